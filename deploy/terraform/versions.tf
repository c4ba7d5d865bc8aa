# Terraform and provider versions, and the provider settings every resource inherits.
#
# Terraform 1.9 is the oldest release whose variable validations may name other variables
# (python_connector_bridge is refused with redis_mode = "cluster", as deploy.sh refuses it);
# 1.7 added the `for_each` import blocks of imports.tf.example (moving a deploy.sh deployment
# under Terraform, see README.md).

terraform {
  required_version = ">= 1.9"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 7.0"
    }
    # Generates the JWT signing key (random_password), as deploy.sh does with /dev/urandom.
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }
}

# Like deploy.sh's CLOUDSDK_CORE_PROJECT: every resource goes into this project unless it
# names another one (none does).
provider "google" {
  project = var.gcp_project_id
  region  = var.service_region
}
