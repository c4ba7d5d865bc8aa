//! The interceptor, spawned in-process.

use std::sync::Arc;

use agent_assist_core::config::Settings;
use agent_assist_core::EventType;
use agent_assist_intake::{CxWebhook, Intake, PushAuth, PushEnvelope};
use cloud_pubsub_interceptor::app::Interceptor;
use cloud_pubsub_interceptor::config::InterceptorConfig;
use cloud_pubsub_interceptor::pull::PullMetrics;
use redis_test_server::RedisServer;

use crate::Running;

pub struct TestInterceptor {
    running: Running,
    intake: Intake,
    cx_webhook: CxWebhook,
    push_auth: Option<PushAuth>,
    pull_metrics: Option<Arc<PullMetrics>>,
    http: reqwest::Client,
}

impl TestInterceptor {
    /// The interceptor configured by `settings`.
    pub async fn spawn(settings: Settings) -> Self {
        let config = InterceptorConfig::from_settings(&settings).expect("valid settings");
        Self::spawn_config(config).await
    }

    /// The interceptor with `config`, for what settings do not reach (the key cache's
    /// intervals, say).
    pub async fn spawn_config(config: InterceptorConfig) -> Self {
        let mut built = None;
        let (running, _) = Running::start(|listener, shutdown| {
            let interceptor =
                Interceptor::build(config, &shutdown).expect("the interceptor builds");
            built = Some((
                interceptor.intake().clone(),
                interceptor.cx_webhook().clone(),
                interceptor.push_auth().cloned(),
                interceptor.pull_metrics(),
            ));
            interceptor.run(listener, shutdown)
        })
        .await;
        let (intake, cx_webhook, push_auth, pull_metrics) = built.expect("built");
        Self {
            running,
            intake,
            cx_webhook,
            push_auth,
            pull_metrics,
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

    /// The push authentication, when configured.
    pub fn push_auth(&self) -> Option<&PushAuth> {
        self.push_auth.as_ref()
    }

    /// Pull mode's metrics (`PUBSUB_PULL_SUBSCRIPTIONS` set).
    ///
    /// # Panics
    /// If pull mode is off.
    pub fn pull_metrics(&self) -> &PullMetrics {
        self.pull_metrics
            .as_deref()
            .expect("pull mode is on (PUBSUB_PULL_SUBSCRIPTIONS)")
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
