# The Artifact Registry repository deploy.sh's Cloud Build step pushes to, and the image each
# service runs. Terraform does not build images: see README.md ("Images") for the build step.

resource "google_artifact_registry_repository" "images" {
  repository_id = var.artifact_repository
  location      = var.service_region
  format        = "DOCKER"
  description   = "Agent Assist backend images"

  depends_on = [google_project_service.required]
}

locals {
  # Where deploy.sh pushes: <region>-docker.pkg.dev/<project>/<repository>/<image>:<tag>.
  image_registry    = "${var.service_region}-docker.pkg.dev/${var.gcp_project_id}/${var.artifact_repository}"
  connector_image   = var.connector_image != "" ? var.connector_image : "${local.image_registry}/ui-connector:${var.image_tag}"
  interceptor_image = var.interceptor_image != "" ? var.interceptor_image : "${local.image_registry}/cloud-pubsub-interceptor:${var.image_tag}"
}
