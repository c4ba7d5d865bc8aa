//! The interceptor, spawned in-process.

use agent_assist_core::config::Settings;
use agent_assist_core::EventType;
use agent_assist_intake::{CxWebhook, Intake, PushEnvelope};
use cloud_pubsub_interceptor::app::Interceptor;
use cloud_pubsub_interceptor::config::InterceptorConfig;
use redis_test_server::RedisServer;

use crate::Running;

pub struct TestInterceptor {
    running: Running,
    intake: Intake,
    cx_webhook: CxWebhook,
    http: reqwest::Client,
}

impl TestInterceptor {
    /// The interceptor configured by `settings`.
    pub async fn spawn(settings: Settings) -> Self {
        let config = InterceptorConfig::from_settings(&settings).expect("valid settings");
        let mut parts = None;
        let (running, _) = Running::start(|listener, shutdown| {
            let interceptor =
                Interceptor::build(config, &shutdown).expect("the interceptor builds");
            parts = Some((
                interceptor.intake().clone(),
                interceptor.cx_webhook().clone(),
            ));
            interceptor.run(listener, shutdown)
        })
        .await;
        let (intake, cx_webhook) = parts.expect("built");
        Self {
            running,
            intake,
            cx_webhook,
            http: reqwest::Client::new(),
        }
    }

    /// The interceptor on `redis`, with default settings otherwise.
    pub async fn on(redis: &RedisServer) -> Self {
        Self::spawn(Settings::from_pairs([("REDIS_URL", redis.url())])).await
    }

    pub fn url(&self, path: &str) -> String {
        self.running.url(path)
    }

    pub fn intake(&self) -> &Intake {
        &self.intake
    }

    /// The Dialogflow CX webhook (tests read its metrics).
    pub fn cx_webhook(&self) -> &CxWebhook {
        &self.cx_webhook
    }

    pub fn bus(&self) -> &agent_assist_core::ConversationBus {
        self.intake.bus()
    }

    /// POSTs `body` to `path`; the status and the body of the answer.
    pub async fn post(&self, path: &str, body: impl Into<reqwest::Body>) -> (u16, String) {
        let response = self
            .http
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("the interceptor answers");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    /// Pushes `envelope` to `event_type`'s endpoint.
    pub async fn push(&self, event_type: EventType, envelope: &PushEnvelope) -> (u16, String) {
        self.post(&event_type.route(), envelope.to_body()).await
    }

    /// Stops it through its shutdown token and waits until it has drained.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.running.stop().await
    }
}
