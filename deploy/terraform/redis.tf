# Memorystore for Redis, the bus between the two services, and the Serverless VPC Access
# connector through which the services reach it.

resource "google_redis_instance" "bus" {
  name           = var.redis_instance_id
  region         = var.service_region
  tier           = var.redis_tier == "standard" ? "STANDARD_HA" : "BASIC"
  memory_size_gb = var.redis_size_gb
  # The API spells versions in upper case (REDIS_7_2); .env uses gcloud's redis_7_2.
  redis_version      = upper(var.redis_version)
  authorized_network = "projects/${var.gcp_project_id}/global/networks/${var.vpc_network}"

  depends_on = [google_project_service.required]
}

resource "google_vpc_access_connector" "bus" {
  name          = var.vpc_connector_name
  region        = var.service_region
  network       = var.vpc_network
  ip_cidr_range = var.vpc_connector_range
  # gcloud's defaults for `connectors create`, which deploy.sh relies on, spelled out:
  # current providers require a size.
  machine_type  = "e2-micro"
  min_instances = 2
  max_instances = 10

  depends_on = [google_project_service.required]
}
