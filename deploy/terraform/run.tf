# The two Cloud Run services with the settings deploy.sh's `gcloud run deploy` gives them,
# and who may invoke them.

locals {
  # Where the services find Redis: the instance's host and port, or the cluster's discovery
  # endpoint as its one seed node (the services learn the shards from it).
  redis_env = local.redis_cluster ? {
    REDIS_CLUSTER_NODES = "redis://${google_redis_cluster.bus[0].discovery_endpoints[0].address}:${google_redis_cluster.bus[0].discovery_endpoints[0].port}"
    } : {
    REDISHOST = google_redis_instance.bus[0].host
    REDISPORT = tostring(google_redis_instance.bus[0].port)
  }

  # Application settings, passed only when set (unset: the binary's default), as deploy.sh's
  # SHARED_APP_VARS, CONNECTOR_APP_VARS and INTERCEPTOR_APP_VARS.
  shared_app_settings = {
    CONVERSATION_HISTORY_LENGTH      = var.conversation_history_length
    CONVERSATION_HISTORY_TTL_SECONDS = var.conversation_history_ttl_seconds
    DEDUP_WINDOW_SECONDS             = var.dedup_window_seconds
    REDIS_TIMEOUT_MS                 = var.redis_timeout_ms
    INTEGRATION_KEY_TTL_SECONDS      = var.integration_key_ttl_seconds
  }
  connector_app_settings = {
    AUTH_OPTION                = var.auth_option
    APP_AUTH_OPTION            = var.app_auth_option
    SALESFORCE_DOMAIN          = var.salesforce_domain
    SALESFORCE_ORGANIZATION_ID = var.salesforce_organization_id
    GENESYS_CLOUD_ENVIRONMENT  = var.genesys_cloud_environment
    TWILIO_FLEX_ENVIRONMENT    = var.twilio_flex_environment
    TWILIO_ACCOUNT_SID         = var.twilio_account_sid
    CORS_ALLOWED_ORIGINS       = var.cors_allowed_origins
    JWT_TOKEN_LIFETIME         = var.jwt_token_lifetime
    DISCONNECT_ON_TOKEN_EXPIRY = var.disconnect_on_token_expiry
  }
  interceptor_app_settings = {
    PYTHON_CONNECTOR_BRIDGE                  = var.python_connector_bridge
    CX_WEBHOOK_DEADLINE_MS                   = var.cx_webhook_deadline_ms
    PUBSUB_PULL_MAX_OUTSTANDING_MESSAGES     = var.pubsub_pull_max_outstanding_messages
    PUBSUB_PULL_MAX_OUTSTANDING_BYTES        = var.pubsub_pull_max_outstanding_bytes
    PUBSUB_PULL_MALFORMED_NACK_DELAY_SECONDS = var.pubsub_pull_malformed_nack_delay_seconds
  }

  # Pull mode: <event type>=<subscription> for each feed, in deploy.sh's order.
  pull_env = local.interceptor_pulls ? {
    PUBSUB_PULL_SUBSCRIPTIONS = join(",", [
      for feed in local.feed_order :
      "${local.event_feeds[feed].event_type}=projects/${var.gcp_project_id}/subscriptions/${local.event_feeds[feed].subscription}"
    ])
  } : {}

  # The audience of the push tokens (deploy.sh's resolve_push_auth_audience): by default the
  # interceptor's deterministic URL, known before the service exists (its own uri would be a
  # cycle) and accepted by Cloud Run's IAM check as one of the service's URLs.
  push_auth_audience = var.push_auth_audience != "" ? var.push_auth_audience : "https://${var.interceptor_service_name}-${data.google_project.this.number}.${var.service_region}.run.app"

  # The interceptor verifies the push tokens itself: their audience and the account that
  # signed them (the invoker).
  push_auth_env = {
    PUSH_AUTH_SERVICE_ACCOUNT = google_service_account.pubsub_invoker.email
    PUSH_AUTH_AUDIENCE        = local.push_auth_audience
  }

  connector_env = merge(
    local.redis_env,
    { GCP_PROJECT_ID = var.gcp_project_id },
    { for name, value in merge(local.connector_app_settings, local.shared_app_settings) : name => value if value != "" },
  )
  interceptor_env = merge(
    local.redis_env,
    { for name, value in merge(local.shared_app_settings, local.interceptor_app_settings) : name => value if value != "" },
    local.push_auth_env,
    local.cx_webhook_env,
    local.pull_env,
  )

  # deploy.sh's INTERCEPTOR_INGRESS, as the API spells it.
  ingress_api = {
    internal                          = "INGRESS_TRAFFIC_INTERNAL_ONLY"
    all                               = "INGRESS_TRAFFIC_ALL"
    internal-and-cloud-load-balancing = "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"
  }

  # The connector reads the key from /secret/jwt_secret_key (its JWT_SECRET_KEY_PATH default).
  jwt_secret_mount_dir = "/secret"
  jwt_secret_file      = "jwt_secret_key"
}

# Only with an identity token of an account holding run.invoker: the Pub/Sub invoker, and the
# Dialogflow service agent when the CX webhook is on. Ingress internal by default (Pub/Sub push
# counts as internal); Dialogflow CX calls from outside the VPC (see deploy/README.md). In pull
# mode nothing needs to reach it for events; it works outside requests, so its CPU stays
# allocated and at least one instance runs.
resource "google_cloud_run_v2_service" "interceptor" {
  name     = var.interceptor_service_name
  location = var.service_region
  ingress  = local.ingress_api[var.interceptor_ingress]
  # teardown.sh deletes the services; `terraform destroy` must be able to as well.
  deletion_protection = false

  template {
    service_account = google_service_account.interceptor.email

    scaling {
      min_instance_count = local.interceptor_pulls && var.interceptor_min_instances < 1 ? 1 : var.interceptor_min_instances
      # Cloud Run's default maximum, which deploy.sh's services get; the v2 API rejects a
      # minimum without a maximum.
      max_instance_count = 100
    }

    vpc_access {
      connector = google_vpc_access_connector.bus.id
      # gcloud's default with --vpc-connector: only private ranges (Redis) go through it.
      egress = "PRIVATE_RANGES_ONLY"
    }

    # The CX webhook's secrets (cx_webhook.tf), one directory each.
    dynamic "volumes" {
      for_each = local.cx_webhook_secrets
      content {
        name = "cx-webhook-${volumes.key}"
        secret {
          secret = google_secret_manager_secret.cx_webhook[volumes.key].secret_id
          items {
            version = "latest"
            path    = volumes.value.file
          }
        }
      }
    }

    containers {
      image = local.interceptor_image

      # `gcloud run deploy --no-cpu-throttling` (pull mode); without the block, CPU only
      # during requests, gcloud's default.
      dynamic "resources" {
        for_each = local.interceptor_pulls ? [false] : []
        content {
          cpu_idle = resources.value
        }
      }

      dynamic "env" {
        for_each = local.interceptor_env
        content {
          name  = env.key
          value = env.value
        }
      }

      dynamic "volume_mounts" {
        for_each = local.cx_webhook_secrets
        content {
          name       = "cx-webhook-${volume_mounts.key}"
          mount_path = volume_mounts.value.mount_dir
        }
      }
    }
  }

  lifecycle {
    precondition {
      condition     = var.interceptor_image != "" || var.image_tag != ""
      error_message = "Set image_tag (the tag of the images in artifact_repository) or interceptor_image."
    }
    precondition {
      condition     = (var.cx_webhook_service_agent == "") == (var.cx_webhook_id_token_audience == "")
      error_message = "Set cx_webhook_service_agent and cx_webhook_id_token_audience together (or neither)."
    }
  }

  # The revision starts only once its account may read the webhook's secrets.
  depends_on = [
    google_project_iam_member.interceptor,
    google_secret_manager_secret_iam_member.cx_webhook_interceptor,
    google_secret_manager_secret_version.cx_webhook,
  ]
}

# Public (desktops connect directly; every request carries a token), one-hour timeout for
# long-lived Socket.IO connections, session affinity so polling fallbacks stay on one
# instance, and the JWT secret mounted as a file where the binary looks for it.
resource "google_cloud_run_v2_service" "connector" {
  name                = var.connector_service_name
  location            = var.service_region
  deletion_protection = false

  template {
    service_account  = google_service_account.connector.email
    timeout          = "3600s"
    session_affinity = true

    scaling {
      min_instance_count = var.connector_min_instances
      max_instance_count = 100
    }

    vpc_access {
      connector = google_vpc_access_connector.bus.id
      egress    = "PRIVATE_RANGES_ONLY"
    }

    volumes {
      name = "jwt-secret"
      secret {
        secret = google_secret_manager_secret.jwt.secret_id
        items {
          version = "latest"
          path    = local.jwt_secret_file
        }
      }
    }

    containers {
      image = local.connector_image

      dynamic "env" {
        for_each = local.connector_env
        content {
          name  = env.key
          value = env.value
        }
      }

      volume_mounts {
        name       = "jwt-secret"
        mount_path = local.jwt_secret_mount_dir
      }
    }
  }

  lifecycle {
    precondition {
      condition     = var.connector_image != "" || var.image_tag != ""
      error_message = "Set image_tag (the tag of the images in artifact_repository) or connector_image."
    }
  }

  # The revision starts only once its account may read the secret and a version exists.
  depends_on = [google_project_iam_member.connector, google_secret_manager_secret_version.jwt]
}

# `gcloud run deploy --allow-unauthenticated`.
resource "google_cloud_run_v2_service_iam_member" "connector_public" {
  name     = google_cloud_run_v2_service.connector.name
  location = google_cloud_run_v2_service.connector.location
  role     = "roles/run.invoker"
  member   = "allUsers"
}

# The only identity allowed to call the interceptor: the account Pub/Sub pushes with.
resource "google_cloud_run_v2_service_iam_member" "interceptor_pubsub_invoker" {
  name     = google_cloud_run_v2_service.interceptor.name
  location = google_cloud_run_v2_service.interceptor.location
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.pubsub_invoker.email}"
}
