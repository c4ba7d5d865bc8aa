# The JWT signing key: generated here, kept in Secret Manager, read by the connector from a
# mounted file. Its value is never an output. It is in the Terraform state (as every
# generated secret is): keep the state where only deployers can read it (see README.md).

# 64 characters from a 64-symbol alphabet (letters, digits, + and /): 384 bits, the same as
# deploy.sh's 48 bytes from /dev/urandom in base64.
resource "random_password" "jwt_secret" {
  length           = 64
  special          = true
  override_special = "+/"
}

resource "google_secret_manager_secret" "jwt" {
  secret_id = var.jwt_secret_name

  replication {
    user_managed {
      replicas {
        location = var.service_region
      }
    }
  }

  depends_on = [google_project_service.required]
}

resource "google_secret_manager_secret_version" "jwt" {
  secret      = google_secret_manager_secret.jwt.id
  secret_data = random_password.jwt_secret.result

  lifecycle {
    # An imported version (a deployment moved from deploy.sh) keeps its value, so tokens
    # already issued stay valid, as when deploy.sh finds the secret. Rotating is explicit:
    # terraform apply -replace=random_password.jwt_secret -replace=google_secret_manager_secret_version.jwt
    ignore_changes = [secret_data]
  }
}
