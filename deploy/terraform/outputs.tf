# What deploy.sh prints at the end. The JWT secret's value is deliberately not among them.

output "connector_url" {
  description = "URL of the UI connector: what agent desktops connect to."
  value       = google_cloud_run_v2_service.connector.uri
}

output "interceptor_url" {
  description = "URL of the Pub/Sub interceptor (push subscriptions deliver to it; in pull mode nothing calls it for events)."
  value       = google_cloud_run_v2_service.interceptor.uri
}

output "cx_webhook_urls" {
  description = "Where to register the Dialogflow CX webhook (standard and flexible); see deploy/README.md."
  value = {
    standard = "${google_cloud_run_v2_service.interceptor.uri}/dialogflow-cx-webhook"
    flexible = "${google_cloud_run_v2_service.interceptor.uri}/dialogflow-cx-webhook/flexible"
  }
}

output "notification_topics" {
  description = "Topics to set as the conversation profile's Pub/Sub notifications, by notification."
  value       = { for feed, topic in google_pubsub_topic.event : feed => topic.id }
}

output "dead_letter_subscription" {
  description = "Where refused messages can be inspected (gcloud pubsub subscriptions pull)."
  value       = google_pubsub_subscription.dead_letter.id
}

output "jwt_secret" {
  description = "Secret Manager secret the connector signs desktop tokens with (its name; the value is never output)."
  value       = google_secret_manager_secret.jwt.id
}
