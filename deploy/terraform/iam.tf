# The three service accounts deploy.sh creates and the project roles of the two runtime
# accounts: exactly these, nothing broader. The invoker's only grant (run.invoker on the
# interceptor) is in run.tf.
#
# Bindings are google_*_iam_member (additive, like `gcloud ... add-iam-policy-binding`):
# other members of the same roles in the project are left alone, where an authoritative
# google_project_iam_binding would remove them.

locals {
  connector_roles = [
    "roles/redis.editor",
    "roles/vpcaccess.user",
    "roles/compute.viewer",
    "roles/secretmanager.secretAccessor",
    "roles/dialogflow.agentAssistClient",
  ]
  interceptor_roles = [
    "roles/redis.editor",
    "roles/vpcaccess.user",
    "roles/compute.viewer",
  ]
}

resource "google_service_account" "connector" {
  account_id   = var.connector_service_account_name
  display_name = "UI connector runtime"
  description  = "Agent Assist backend: UI connector runtime"

  depends_on = [google_project_service.required]
}

resource "google_service_account" "interceptor" {
  account_id   = var.interceptor_service_account_name
  display_name = "Pub/Sub interceptor runtime"
  description  = "Agent Assist backend: Pub/Sub interceptor runtime"

  depends_on = [google_project_service.required]
}

resource "google_service_account" "pubsub_invoker" {
  account_id   = var.pubsub_invoker_service_account_name
  display_name = "Pub/Sub push to the interceptor"
  description  = "Agent Assist backend: Pub/Sub push to the interceptor"

  depends_on = [google_project_service.required]
}

resource "google_project_iam_member" "connector" {
  for_each = toset(local.connector_roles)

  project = var.gcp_project_id
  role    = each.value
  member  = "serviceAccount:${google_service_account.connector.email}"
}

resource "google_project_iam_member" "interceptor" {
  for_each = toset(local.interceptor_roles)

  project = var.gcp_project_id
  role    = each.value
  member  = "serviceAccount:${google_service_account.interceptor.email}"
}
