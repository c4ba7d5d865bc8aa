# Inputs. Each deploy/.env setting is the variable of the same name in lower case, with the
# same meaning and the same default (deploy/.env.sample documents them too); the tests in
# crates/deployment-checks/tests/terraform.rs keep the two in step. Only the image variables
# have no .env counterpart (see their descriptions).

# ---- Required ----------------------------------------------------------------------------

variable "gcp_project_id" {
  description = "The Google Cloud project id (not its name or number) everything is created in."
  type        = string
}

variable "service_region" {
  description = "Region of the Cloud Run services, Redis, the VPC connector, the image repository and the secret's replica, e.g. us-central1."
  type        = string
}

variable "vpc_connector_range" {
  description = "An unused /28 range of vpc_network for the Serverless VPC Access connector (it must not overlap any subnet or other connector of the network)."
  type        = string

  validation {
    # deploy.sh accepts an IPv4 range ending in /28 and nothing else.
    condition     = endswith(var.vpc_connector_range, "/28") && can(cidrhost(var.vpc_connector_range, 0))
    error_message = "vpc_connector_range must be an IPv4 /28 range such as 10.8.0.0/28."
  }
}

# ---- Images ------------------------------------------------------------------------------

variable "artifact_repository" {
  description = "Artifact Registry (Docker) repository the images are pushed to."
  type        = string
  default     = "aa-integration"
}

variable "image_tag" {
  description = "Tag of the images in artifact_repository to run (deploy.sh's Cloud Build step pushes <git commit>-<UTC time>; see README.md). Used for each service whose *_image variable is empty."
  type        = string
  default     = ""
}

variable "connector_image" {
  description = "Full image reference of the UI connector, for images built elsewhere (your pipeline). Empty: <region>-docker.pkg.dev/<project>/<artifact_repository>/ui-connector:<image_tag>. No .env counterpart: deploy.sh always builds its own."
  type        = string
  default     = ""
}

variable "interceptor_image" {
  description = "Full image reference of the Pub/Sub interceptor, for images built elsewhere. Empty: <region>-docker.pkg.dev/<project>/<artifact_repository>/cloud-pubsub-interceptor:<image_tag>. No .env counterpart."
  type        = string
  default     = ""
}

# ---- Cloud Run services ------------------------------------------------------------------

variable "connector_service_name" {
  description = "Cloud Run service name of the UI connector; it also names the service URL."
  type        = string
  default     = "ui-connector"
}

variable "interceptor_service_name" {
  description = "Cloud Run service name of the Pub/Sub interceptor."
  type        = string
  default     = "cloud-pubsub-interceptor"
}

variable "connector_min_instances" {
  description = "Minimum warm instances of the connector (0 allows scaling to zero, at the cost of cold starts)."
  type        = number
  default     = 1

  validation {
    condition     = var.connector_min_instances >= 0 && var.connector_min_instances <= 1000 && floor(var.connector_min_instances) == var.connector_min_instances
    error_message = "connector_min_instances must be a whole number from 0 to 1000."
  }
}

variable "interceptor_min_instances" {
  description = "Minimum warm instances of the interceptor (raised to 1 in pull mode: with none, nothing pulls)."
  type        = number
  default     = 1

  validation {
    condition     = var.interceptor_min_instances >= 0 && var.interceptor_min_instances <= 1000 && floor(var.interceptor_min_instances) == var.interceptor_min_instances
    error_message = "interceptor_min_instances must be a whole number from 0 to 1000."
  }
}

variable "interceptor_mode" {
  description = "How Pub/Sub delivers to the interceptor: \"push\" (push subscriptions, one HTTPS request per event) or \"pull\" (pull subscriptions it reads through streaming pull with no inbound traffic: CPU always allocated, at least one instance, roles/pubsub.subscriber for its account on the four subscriptions)."
  type        = string
  default     = "push"

  validation {
    condition     = contains(["push", "pull"], var.interceptor_mode)
    error_message = "interceptor_mode must be \"push\" or \"pull\"."
  }
}

# ---- Service accounts (names, 6 to 30 characters; the project id is appended) -----------

variable "connector_service_account_name" {
  description = "Runtime identity of the connector: Redis, VPC access, the JWT secret, Agent Assist calls."
  type        = string
  default     = "ui-connector"
}

variable "interceptor_service_account_name" {
  description = "Runtime identity of the interceptor: Redis and VPC access only."
  type        = string
  default     = "cloud-pubsub-interceptor"
}

variable "pubsub_invoker_service_account_name" {
  description = "Identity Pub/Sub pushes with; the only account allowed to invoke the interceptor."
  type        = string
  default     = "cloud-run-pubsub-invoker"
}

# ---- JWT secret --------------------------------------------------------------------------

variable "jwt_secret_name" {
  description = "Secret Manager secret holding the key the connector signs desktop tokens with; generated, mounted into the connector at /secret/jwt_secret_key."
  type        = string
  default     = "aa-integration-jwt-secret"
}

# ---- Memorystore for Redis and networking ------------------------------------------------

variable "redis_mode" {
  description = "standalone (one Memorystore for Redis instance, the redis_instance_id ... redis_version variables) or cluster (Memorystore for Redis Cluster, the redis_cluster_* variables; the services get REDIS_CLUSTER_NODES instead of REDISHOST/REDISPORT). Choose cluster beyond what one primary carries (roughly 50,000 events/s for the whole fleet; deploy/README.md)."
  type        = string
  default     = "standalone"

  validation {
    condition     = contains(["standalone", "cluster"], var.redis_mode)
    error_message = "redis_mode must be standalone or cluster."
  }
}

variable "redis_instance_id" {
  description = "Memorystore for Redis instance id."
  type        = string
  default     = "aa-integration-redis"
}

variable "redis_tier" {
  description = "basic (one node) or standard (with a replica and failover)."
  type        = string
  default     = "basic"

  validation {
    condition     = contains(["basic", "standard"], var.redis_tier)
    error_message = "redis_tier must be basic or standard."
  }
}

variable "redis_size_gb" {
  description = "Redis memory size in GB."
  type        = number
  default     = 1

  validation {
    condition     = var.redis_size_gb >= 1 && var.redis_size_gb <= 300 && floor(var.redis_size_gb) == var.redis_size_gb
    error_message = "redis_size_gb must be a whole number from 1 to 300."
  }
}

variable "redis_version" {
  description = "Redis version as gcloud spells it (redis_7_2); see `gcloud redis instances create --help`."
  type        = string
  default     = "redis_7_2"
}

variable "redis_cluster_id" {
  description = "redis_mode = cluster: the Memorystore for Redis Cluster id (1 to 63 lower-case letters, digits and hyphens, starting with a letter)."
  type        = string
  default     = "aa-integration-redis-cluster"

  validation {
    condition     = can(regex("^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$", var.redis_cluster_id))
    error_message = "redis_cluster_id must be 1 to 63 lower-case letters, digits and hyphens, starting with a letter and not ending with a hyphen."
  }
}

variable "redis_cluster_shard_count" {
  description = "redis_mode = cluster: shards (1 to 250), each with one primary."
  type        = number
  default     = 3

  validation {
    condition     = var.redis_cluster_shard_count >= 1 && var.redis_cluster_shard_count <= 250 && floor(var.redis_cluster_shard_count) == var.redis_cluster_shard_count
    error_message = "redis_cluster_shard_count must be a whole number from 1 to 250."
  }
}

variable "redis_cluster_replica_count" {
  description = "redis_mode = cluster: replicas per shard (0 to 2); with replicas a failed primary is replaced automatically."
  type        = number
  default     = 1

  validation {
    condition     = var.redis_cluster_replica_count >= 0 && var.redis_cluster_replica_count <= 2 && floor(var.redis_cluster_replica_count) == var.redis_cluster_replica_count
    error_message = "redis_cluster_replica_count must be a whole number from 0 to 2."
  }
}

variable "redis_cluster_node_type" {
  description = "redis_mode = cluster: node type as gcloud spells it (redis-highmem-medium); see `gcloud redis clusters create --help`."
  type        = string
  default     = "redis-highmem-medium"

  validation {
    condition     = contains(["redis-shared-core-nano", "redis-standard-small", "redis-highcpu-medium", "redis-highmem-medium", "redis-highmem-xlarge"], var.redis_cluster_node_type)
    error_message = "redis_cluster_node_type must be one of redis-shared-core-nano, redis-standard-small, redis-highcpu-medium, redis-highmem-medium, redis-highmem-xlarge."
  }
}

variable "redis_cluster_subnet" {
  description = "redis_mode = cluster: the subnet of vpc_network in service_region where Memorystore puts the cluster's Private Service Connect endpoints (default: that subnet of the default network)."
  type        = string
  default     = "default"
}

variable "redis_cluster_connection_policy" {
  description = "redis_mode = cluster: the service connection policy (class gcp-memorystore-redis) allowing those endpoints; one per network and region. If the network has one already, import it under this name (README.md) rather than creating a second."
  type        = string
  default     = "aa-integration-redis-psc"
}

variable "vpc_network" {
  description = "VPC network Redis and the VPC connector attach to."
  type        = string
  default     = "default"
}

variable "vpc_connector_name" {
  description = "Serverless VPC Access connector name (at most 25 lower-case letters, digits and hyphens)."
  type        = string
  default     = "aa-integration-vpc"
}

# ---- Pub/Sub -----------------------------------------------------------------------------

variable "human_agent_assistant_topic_id" {
  description = "Topic the conversation profile publishes suggestions (human agent assistant events) to."
  type        = string
  default     = "aa-human-agent-assistant-topic"
}

variable "conversation_lifecycle_topic_id" {
  description = "Topic for conversation lifecycle notifications."
  type        = string
  default     = "aa-conversation-lifecycle-topic"
}

variable "new_message_topic_id" {
  description = "Topic for new message notifications."
  type        = string
  default     = "aa-new-message-topic"
}

variable "new_recognition_result_topic_id" {
  description = "Topic for new recognition result notifications."
  type        = string
  default     = "aa-new-recognition-result-notification-topic"
}

variable "human_agent_assistant_subscription_id" {
  description = "Push subscription of human_agent_assistant_topic_id to the interceptor."
  type        = string
  default     = "aa-human-agent-assistant-sub"
}

variable "conversation_lifecycle_subscription_id" {
  description = "Push subscription of conversation_lifecycle_topic_id to the interceptor."
  type        = string
  default     = "aa-conversation-lifecycle-sub"
}

variable "new_message_subscription_id" {
  description = "Push subscription of new_message_topic_id to the interceptor."
  type        = string
  default     = "aa-new-message-sub"
}

variable "new_recognition_result_subscription_id" {
  description = "Push subscription of new_recognition_result_topic_id to the interceptor."
  type        = string
  default     = "aa-new-recognition-result-notification-sub"
}

variable "dead_letter_topic_id" {
  description = "Where messages the interceptor keeps refusing end up."
  type        = string
  default     = "aa-interceptor-dead-letter-topic"
}

variable "dead_letter_subscription_id" {
  description = "Pull subscription of dead_letter_topic_id that keeps dead letters for 7 days for inspection."
  type        = string
  default     = "aa-interceptor-dead-letter-sub"
}

variable "max_delivery_attempts" {
  description = "Deliveries of one message before it is dead-lettered (5 to 100)."
  type        = number
  default     = 10

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100 && floor(var.max_delivery_attempts) == var.max_delivery_attempts
    error_message = "max_delivery_attempts must be a whole number from 5 to 100."
  }
}

variable "ack_deadline_seconds" {
  description = "Seconds the interceptor has to answer a push before Pub/Sub retries it (10 to 600)."
  type        = number
  default     = 60

  validation {
    condition     = var.ack_deadline_seconds >= 10 && var.ack_deadline_seconds <= 600 && floor(var.ack_deadline_seconds) == var.ack_deadline_seconds
    error_message = "ack_deadline_seconds must be a whole number from 10 to 600."
  }
}

variable "push_auth_audience" {
  description = "Audience of the push tokens: every push subscription asks Pub/Sub for tokens with it, and the interceptor (PUSH_AUTH_AUDIENCE, with PUSH_AUTH_SERVICE_ACCOUNT the invoker's e-mail) refuses tokens for any other. Empty (default): the interceptor's deterministic URL, https://<interceptor_service_name>-<project number>.<service_region>.run.app. Set it only to a value Cloud Run also accepts for the interceptor."
  type        = string
  default     = ""
}

variable "interceptor_ingress" {
  description = "Who may reach the interceptor at the network level: internal (only the VPC and Google sources such as Pub/Sub push), all (the internet; Cloud Run still admits only the invoker accounts' ID tokens), or internal-and-cloud-load-balancing (a load balancer in front, e.g. for mutual TLS). Dialogflow CX calls the webhook from outside the VPC: see deploy/README.md."
  type        = string
  default     = "internal"

  validation {
    condition     = contains(["internal", "all", "internal-and-cloud-load-balancing"], var.interceptor_ingress)
    error_message = "interceptor_ingress must be internal, all or internal-and-cloud-load-balancing."
  }
}

# ---- Dialogflow CX webhook (optional; empty: off) ----------------------------------------

variable "cx_webhook_service_agent" {
  description = "The Dialogflow service agent allowed to call the interceptor's CX webhook with its ID token (service-<number of the CX agent's project>@gcp-sa-dialogflow.iam.gserviceaccount.com): it gets roles/run.invoker on the interceptor, which checks the token's account and audience. Requires cx_webhook_id_token_audience."
  type        = string
  default     = ""
}

variable "cx_webhook_id_token_audience" {
  description = "The audiences the service agent's tokens carry, comma-separated: the webhook URLs as registered in CX, without query string (<interceptor URL>/dialogflow-cx-webhook and <interceptor URL>/dialogflow-cx-webhook/flexible). Required with cx_webhook_service_agent."
  type        = string
  default     = ""
}

variable "cx_webhook_header_secret_name" {
  description = "Secret Manager secret for the webhook's static-header method, created with the value 'Bearer <random>', readable by the interceptor only, mounted into it (CX_WEBHOOK_HEADER_SECRET_PATH). Empty: off."
  type        = string
  default     = ""
}

variable "cx_webhook_basic_auth_secret_name" {
  description = "Secret Manager secret for the webhook's basic-auth method, created with the value 'dialogflow-cx:<random>', readable by the interceptor only, mounted into it (CX_WEBHOOK_BASIC_AUTH_PATH). Empty: off."
  type        = string
  default     = ""
}

# ---- Application settings (optional; empty means the service's built-in default) --------
# Set on the services only when non-empty, as deploy.sh does. None of them is a secret.

variable "auth_option" {
  description = "Connector: desktop authentication when registering tokens (e.g. Salesforce, SalesforceLWC, GenesysCloud, Twilio; empty: nobody may register)."
  type        = string
  default     = ""
}

variable "app_auth_option" {
  description = "Connector: application authentication when registering tokens (e.g. Twilio)."
  type        = string
  default     = ""
}

variable "salesforce_domain" {
  description = "Connector: Salesforce login domain without https:// (service default login.salesforce.com)."
  type        = string
  default     = ""
}

variable "salesforce_organization_id" {
  description = "Connector: Salesforce organization id."
  type        = string
  default     = ""
}

variable "genesys_cloud_environment" {
  description = "Connector: Genesys Cloud region domain (service default mypurecloud.com)."
  type        = string
  default     = ""
}

variable "twilio_flex_environment" {
  description = "Connector: Twilio Flex domain (an identifier, not a credential)."
  type        = string
  default     = ""
}

variable "twilio_account_sid" {
  description = "Connector: Twilio account SID (an identifier, not a credential)."
  type        = string
  default     = ""
}

variable "cors_allowed_origins" {
  description = "Connector: '*' (service default) or a comma-separated list of origins allowed to connect."
  type        = string
  default     = ""
}

variable "jwt_token_lifetime" {
  description = "Connector: lifetime of issued desktop tokens in minutes (service default 60)."
  type        = string
  default     = ""
}

variable "integration_key_ttl_seconds" {
  description = "Both services: seconds a /conversation-name entry is kept, and a CX webhook context waits for its integration key (service default 86400)."
  type        = string
  default     = ""
}

variable "cx_webhook_deadline_ms" {
  description = "Interceptor: milliseconds the CX webhook has to answer before it answers 503 (service default 3000; keep it below the webhook's timeout in CX, 5 s by default)."
  type        = string
  default     = ""
}

variable "disconnect_on_token_expiry" {
  description = "Connector: \"true\" ends a desktop's socket when its token expires; empty or \"false\" (service default): the token is checked at connect only, as the Python connector did."
  type        = string
  default     = ""

  validation {
    condition     = contains(["", "true", "false"], var.disconnect_on_token_expiry)
    error_message = "disconnect_on_token_expiry must be \"true\", \"false\" or empty."
  }
}

variable "python_connector_bridge" {
  description = "Interceptor: \"true\" also delivers every event to Python connectors on the same Redis, during a switch-over from the Python services; empty or \"false\" (service default): off."
  type        = string
  default     = ""

  validation {
    condition     = contains(["", "true", "false"], var.python_connector_bridge)
    error_message = "python_connector_bridge must be \"true\", \"false\" or empty."
  }

  # The Python connectors read a standalone Redis; they are not cluster clients. (A validation
  # naming another variable needs Terraform 1.9, see versions.tf.)
  validation {
    condition     = !(var.redis_mode == "cluster" && var.python_connector_bridge == "true")
    error_message = "python_connector_bridge = \"true\" is not supported with redis_mode = \"cluster\" (the Python connectors read a standalone Redis)."
  }
}

variable "pubsub_pull_max_outstanding_messages" {
  description = "Interceptor, pull mode: messages one subscription's stream may hold unacknowledged (service default 4000)."
  type        = string
  default     = ""
}

variable "pubsub_pull_max_outstanding_bytes" {
  description = "Interceptor, pull mode: bytes one subscription's stream may hold unacknowledged (service default 67108864, 64 MiB; at least 10485760)."
  type        = string
  default     = ""
}

variable "pubsub_pull_malformed_nack_delay_seconds" {
  description = "Interceptor, pull mode: seconds a malformed message is held before it is nacked for the dead-letter policy (service default 10)."
  type        = string
  default     = ""
}

variable "conversation_history_length" {
  description = "Both services: events kept per conversation for recovery (service default 100)."
  type        = string
  default     = ""
}

variable "conversation_history_ttl_seconds" {
  description = "Both services: how long that history outlives the last event, in seconds (service default 3600)."
  type        = string
  default     = ""
}

variable "dedup_window_seconds" {
  description = "Both services: how long a Pub/Sub message id is remembered to drop redeliveries, in seconds (service default 600)."
  type        = string
  default     = ""
}

variable "redis_timeout_ms" {
  description = "Both services: the longest wait for one Redis command, in milliseconds (service default 2000)."
  type        = string
  default     = ""
}
