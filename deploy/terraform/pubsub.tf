# The four notification topics, their subscriptions (push to the interceptor, or pulled by it
# with interceptor_mode = "pull"), and dead-lettering, as deploy.sh's setup_pubsub creates them.

locals {
  # One entry per Agent Assist notification: topic, subscription, and the event type (a push
  # subscription delivers to the interceptor endpoint /<event type>): deploy.sh's
  # SUBSCRIPTION_TABLE, whose order feed_order keeps.
  event_feeds = {
    human_agent_assistant = {
      topic        = var.human_agent_assistant_topic_id
      subscription = var.human_agent_assistant_subscription_id
      event_type   = "human-agent-assistant-event"
    }
    conversation_lifecycle = {
      topic        = var.conversation_lifecycle_topic_id
      subscription = var.conversation_lifecycle_subscription_id
      event_type   = "conversation-lifecycle-event"
    }
    new_message = {
      topic        = var.new_message_topic_id
      subscription = var.new_message_subscription_id
      event_type   = "new-message-event"
    }
    new_recognition_result = {
      topic        = var.new_recognition_result_topic_id
      subscription = var.new_recognition_result_subscription_id
      event_type   = "new-recognition-result-notification-event"
    }
  }
  feed_order = ["human_agent_assistant", "conversation_lifecycle", "new_message", "new_recognition_result"]

  interceptor_pulls = var.interceptor_mode == "pull"
  # The feeds the interceptor's own account reads (pull mode only).
  pulled_feeds = local.interceptor_pulls ? local.event_feeds : {}

  # Dead-lettering runs as the project's Pub/Sub service agent.
  pubsub_service_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

data "google_project" "this" {
  project_id = var.gcp_project_id
}

resource "google_pubsub_topic" "event" {
  for_each = local.event_feeds

  name = each.value.topic

  depends_on = [google_project_service.required]
}

resource "google_pubsub_topic" "dead_letter" {
  name = var.dead_letter_topic_id

  depends_on = [google_project_service.required]
}

# Without a subscription Pub/Sub would drop what it dead-letters: this one keeps it 7 days.
resource "google_pubsub_subscription" "dead_letter" {
  name                       = var.dead_letter_subscription_id
  topic                      = google_pubsub_topic.dead_letter.id
  message_retention_duration = "604800s"

  expiration_policy {
    ttl = "" # never
  }
}

# Pushes carry an OIDC token of the invoker account for the interceptor's audience (pull mode:
# no push_config, a pull subscription); undeliverable or nacked messages are retried with
# backoff and, after max_delivery_attempts, moved to the dead-letter topic.
resource "google_pubsub_subscription" "event" {
  for_each = local.event_feeds

  name                 = each.value.subscription
  topic                = google_pubsub_topic.event[each.key].id
  ack_deadline_seconds = var.ack_deadline_seconds

  dynamic "push_config" {
    for_each = local.interceptor_pulls ? [] : [each.value.event_type]
    content {
      push_endpoint = "${google_cloud_run_v2_service.interceptor.uri}/${push_config.value}"
      oidc_token {
        service_account_email = google_service_account.pubsub_invoker.email
        # One audience for the four subscriptions, the one the interceptor checks.
        audience = local.push_auth_audience
      }
    }
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = var.max_delivery_attempts
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  expiration_policy {
    ttl = "" # never
  }

  # Pushes start at once: the invoker must already be allowed to call the interceptor.
  depends_on = [google_cloud_run_v2_service_iam_member.interceptor_pubsub_invoker]
}

# Dead-lettering publishes to the dead-letter topic and acknowledges the original.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  topic  = google_pubsub_topic.dead_letter.name
  role   = "roles/pubsub.publisher"
  member = local.pubsub_service_agent
}

# Pull mode: the interceptor reads each subscription as its own account.
resource "google_pubsub_subscription_iam_member" "interceptor_subscriber" {
  for_each = local.pulled_feeds

  subscription = google_pubsub_subscription.event[each.key].name
  role         = "roles/pubsub.subscriber"
  member       = "serviceAccount:${google_service_account.interceptor.email}"
}

resource "google_pubsub_subscription_iam_member" "dead_letter_subscriber" {
  for_each = local.event_feeds

  subscription = google_pubsub_subscription.event[each.key].name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}
