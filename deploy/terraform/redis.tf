# Memorystore between the two services, as redis_mode says: a standalone Memorystore for Redis
# instance, or Memorystore for Redis Cluster with the service connection policy its Private
# Service Connect endpoints need; and the Serverless VPC Access connector through which the
# services reach either.

locals {
  redis_cluster = var.redis_mode == "cluster"
  redis_network = "projects/${var.gcp_project_id}/global/networks/${var.vpc_network}"

  # deploy.sh's REDIS_CLUSTER_NODE_TYPE (gcloud's spelling), as the API spells it.
  redis_cluster_node_type_api = {
    redis-shared-core-nano = "REDIS_SHARED_CORE_NANO"
    redis-standard-small   = "REDIS_STANDARD_SMALL"
    redis-highcpu-medium   = "REDIS_HIGHCPU_MEDIUM"
    redis-highmem-medium   = "REDIS_HIGHMEM_MEDIUM"
    redis-highmem-xlarge   = "REDIS_HIGHMEM_XLARGE"
  }
}

resource "google_redis_instance" "bus" {
  count = local.redis_cluster ? 0 : 1

  name           = var.redis_instance_id
  region         = var.service_region
  tier           = var.redis_tier == "standard" ? "STANDARD_HA" : "BASIC"
  memory_size_gb = var.redis_size_gb
  # The API spells versions in upper case (REDIS_7_2); .env uses gcloud's redis_7_2.
  redis_version      = upper(var.redis_version)
  authorized_network = local.redis_network

  depends_on = [google_project_service.required]
}

# Allows Memorystore to create the cluster's endpoints in the subnet (one policy per network,
# region and service class).
resource "google_network_connectivity_service_connection_policy" "redis_cluster" {
  count = local.redis_cluster ? 1 : 0

  name          = var.redis_cluster_connection_policy
  location      = var.service_region
  network       = local.redis_network
  service_class = "gcp-memorystore-redis"
  description   = "Agent Assist backend: Memorystore for Redis Cluster endpoints"

  psc_config {
    subnetworks = ["projects/${var.gcp_project_id}/regions/${var.service_region}/subnetworks/${var.redis_cluster_subnet}"]
  }

  depends_on = [google_project_service.required]
}

# Like the standalone instance: no AUTH, no in-transit encryption, reachable from the network
# only; the services' seed URL is plain redis:// (run.tf).
resource "google_redis_cluster" "bus" {
  count = local.redis_cluster ? 1 : 0

  name                    = var.redis_cluster_id
  region                  = var.service_region
  shard_count             = var.redis_cluster_shard_count
  replica_count           = var.redis_cluster_replica_count
  node_type               = local.redis_cluster_node_type_api[var.redis_cluster_node_type]
  transit_encryption_mode = "TRANSIT_ENCRYPTION_MODE_DISABLED"
  authorization_mode      = "AUTH_MODE_DISABLED"
  # The provider protects clusters from deletion by default; gcloud (deploy.sh) does not, and
  # teardown.sh deletes the cluster, which `terraform destroy` must be able to do as well.
  deletion_protection_enabled = false

  psc_configs {
    network = local.redis_network
  }

  depends_on = [
    google_project_service.required,
    google_network_connectivity_service_connection_policy.redis_cluster,
  ]
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
