# The APIs deploy.sh enables (`gcloud services enable`): the same list, and in cluster mode
# the same two more.

locals {
  required_apis = [
    "run.googleapis.com",
    "cloudbuild.googleapis.com",
    "artifactregistry.googleapis.com",
    "redis.googleapis.com",
    "vpcaccess.googleapis.com",
    "compute.googleapis.com",
    "secretmanager.googleapis.com",
    "pubsub.googleapis.com",
    "dialogflow.googleapis.com",
    "iam.googleapis.com",
  ]
  # Memorystore for Redis Cluster connects through Private Service Connect, set up by a service
  # connection policy (deploy.sh's CLUSTER_APIS).
  cluster_apis = [
    "networkconnectivity.googleapis.com",
    "serviceconsumermanagement.googleapis.com",
  ]
  enabled_apis = concat(local.required_apis, local.redis_cluster ? local.cluster_apis : [])
}

resource "google_project_service" "required" {
  for_each = toset(local.enabled_apis)

  service = each.value
  # `terraform destroy` leaves the APIs enabled, as teardown.sh does: other workloads in the
  # project may use them.
  disable_on_destroy = false
}
