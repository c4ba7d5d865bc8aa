# The APIs deploy.sh enables (`gcloud services enable`).

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
}

resource "google_project_service" "required" {
  for_each = toset(local.required_apis)

  service = each.value
  # `terraform destroy` leaves the APIs enabled, as teardown.sh does: other workloads in the
  # project may use them.
  disable_on_destroy = false
}
