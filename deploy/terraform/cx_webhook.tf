# The interceptor's Dialogflow CX webhook, as deploy.sh's CX_WEBHOOK_* settings make it: the
# static-header and basic-auth secrets (generated, readable by the interceptor only, mounted
# into it; run.tf mounts them) and the Dialogflow service agent's right to invoke the
# interceptor. Each piece exists only while its variable is set.

locals {
  # deploy.sh's CX_WEBHOOK_SECRET_TABLE: where the interceptor reads each secret (one
  # directory per secret), the setting pointing there, and what precedes the generated value.
  cx_webhook_secret_kinds = {
    header = {
      name      = var.cx_webhook_header_secret_name
      mount_dir = "/secret/cx-webhook-header"
      file      = "authorization"
      setting   = "CX_WEBHOOK_HEADER_SECRET_PATH"
      prefix    = "Bearer "
    }
    basic-auth = {
      name      = var.cx_webhook_basic_auth_secret_name
      mount_dir = "/secret/cx-webhook-basic-auth"
      file      = "credentials"
      setting   = "CX_WEBHOOK_BASIC_AUTH_PATH"
      prefix    = "dialogflow-cx:"
    }
  }
  cx_webhook_secrets = {
    for kind, secret in local.cx_webhook_secret_kinds : kind => secret if secret.name != ""
  }

  # The interceptor's settings for the webhook: where the secrets are, whose tokens to accept.
  cx_webhook_env = merge(
    { for kind, secret in local.cx_webhook_secrets : secret.setting => "${secret.mount_dir}/${secret.file}" },
    var.cx_webhook_service_agent == "" ? {} : {
      CX_WEBHOOK_SERVICE_AGENT     = var.cx_webhook_service_agent
      CX_WEBHOOK_ID_TOKEN_AUDIENCE = var.cx_webhook_id_token_audience
    },
  )
}

# 64 characters from a 64-symbol alphabet, as deploy.sh's 48 random bytes in base64.
resource "random_password" "cx_webhook" {
  for_each = local.cx_webhook_secrets

  length           = 64
  special          = true
  override_special = "+/"
}

resource "google_secret_manager_secret" "cx_webhook" {
  for_each = local.cx_webhook_secrets

  secret_id = each.value.name

  replication {
    user_managed {
      replicas {
        location = var.service_region
      }
    }
  }

  depends_on = [google_project_service.required]
}

resource "google_secret_manager_secret_version" "cx_webhook" {
  for_each = local.cx_webhook_secrets

  secret      = google_secret_manager_secret.cx_webhook[each.key].id
  secret_data = "${each.value.prefix}${random_password.cx_webhook[each.key].result}"

  lifecycle {
    # The value CX was given stays, as when deploy.sh finds the secret (see secret.tf).
    ignore_changes = [secret_data]
  }
}

# The interceptor reads these secrets, and only these (no project-wide accessor role).
resource "google_secret_manager_secret_iam_member" "cx_webhook_interceptor" {
  for_each = local.cx_webhook_secrets

  secret_id = google_secret_manager_secret.cx_webhook[each.key].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.interceptor.email}"
}

# Cloud Run admits the Dialogflow service agent's ID token; the interceptor then checks its
# audience and account itself.
resource "google_cloud_run_v2_service_iam_member" "interceptor_dialogflow_invoker" {
  for_each = toset(var.cx_webhook_service_agent == "" ? [] : [var.cx_webhook_service_agent])

  name     = google_cloud_run_v2_service.interceptor.name
  location = google_cloud_run_v2_service.interceptor.location
  role     = "roles/run.invoker"
  member   = "serviceAccount:${each.value}"
}
