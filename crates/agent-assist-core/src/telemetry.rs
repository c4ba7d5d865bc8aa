//! Logging, set up in one place for both services.
//!
//! On Cloud Run, stdout lines that are JSON objects with `severity` and `message` become
//! structured Cloud Logging entries; a `trace` field is written as
//! `logging.googleapis.com/trace` so request logs group under their Cloud Trace.
//! `LOG_FORMAT=text` gives human-readable lines instead; `RUST_LOG` sets the filter
//! (default `info`).

use std::fmt;

use serde_json::{Map, Value};

use crate::config::Settings;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// The Cloud Logging field that links an entry to its trace.
pub const TRACE_FIELD: &str = "logging.googleapis.com/trace";

/// Installs the global subscriber, as `LOG_FORMAT` and `RUST_LOG` say. Call once, first thing
/// in `main`; an unreadable `RUST_LOG` falls back to `info` rather than stopping the service.
pub fn init(settings: &Settings) {
    let filter = settings
        .get("RUST_LOG")
        .and_then(|directives| EnvFilter::try_new(directives).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let text = settings
        .get("LOG_FORMAT")
        .is_some_and(|v| v.eq_ignore_ascii_case("text"));
    let registry = tracing_subscriber::registry()
        .with(filter)
        .with(SpanFieldsLayer);
    let result = if text {
        registry.with(tracing_subscriber::fmt::layer()).try_init()
    } else {
        registry
            .with(tracing_subscriber::fmt::layer().event_format(CloudLoggingJson))
            .try_init()
    };
    // A second init (tests that start several services in one process) keeps the first.
    let _ = result;
}

/// One JSON object per line: `severity`, `message`, `time`, `target`, the event's fields, and the
/// fields of the spans it happened in.
struct CloudLoggingJson;

impl<S, N> FormatEvent<S, N> for CloudLoggingJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut fields = JsonFields(Map::new());
        event.record(&mut fields);
        let mut entry = Map::new();
        entry.insert("severity".into(), severity(*meta.level()).into());
        entry.insert(
            "message".into(),
            fields
                .0
                .remove("message")
                .unwrap_or_else(|| Value::String(String::new())),
        );
        entry.insert("time".into(), chrono::Utc::now().to_rfc3339().into());
        entry.insert("target".into(), meta.target().into());
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                if let Some(span_fields) = span.extensions().get::<SpanFields>() {
                    for (k, v) in &span_fields.0 {
                        entry.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                }
            }
        }
        for (k, v) in fields.0 {
            entry.insert(k, v);
        }
        if let Some(trace) = entry.remove("trace") {
            entry.insert(TRACE_FIELD.into(), trace);
        }
        let line = serde_json::to_string(&entry).map_err(|_| fmt::Error)?;
        writeln!(writer, "{line}")
    }
}

fn severity(level: Level) -> &'static str {
    match level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARNING",
        Level::INFO => "INFO",
        Level::DEBUG | Level::TRACE => "DEBUG",
    }
}

struct JsonFields(Map<String, Value>);

impl Visit for JsonFields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
}

/// Span fields kept for the JSON formatter (see [`SpanFieldsLayer`]).
struct SpanFields(Map<String, Value>);

/// Keeps each span's fields so that events inside it (request logs) carry them, e.g. `trace`.
pub struct SpanFieldsLayer;

impl<S> tracing_subscriber::Layer<S> for SpanFieldsLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut fields = JsonFields(Map::new());
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(fields.0));
        }
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if let Some(span) = ctx.span(id) {
            let mut extensions = span.extensions_mut();
            if let Some(SpanFields(map)) = extensions.get_mut::<SpanFields>() {
                let mut fields = JsonFields(std::mem::take(map));
                values.record(&mut fields);
                *map = fields.0;
            }
        }
    }
}

/// The span every HTTP request is logged in: method, path, and the Cloud Trace id from
/// `X-Cloud-Trace-Context` (`TRACE/SPAN;o=1`) or W3C `traceparent` (`00-TRACE-SPAN-01`),
/// formatted as Cloud Logging wants it (`projects/<project>/traces/<trace>`) when the project is
/// known. Query strings are left out: they may carry tokens.
pub fn request_span<B>(project: Option<&str>, request: &axum::http::Request<B>) -> tracing::Span {
    let trace = trace_id(request.headers()).map(|id| match project {
        Some(project) => format!("projects/{project}/traces/{id}"),
        None => id,
    });
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        trace = trace.as_deref().unwrap_or(""),
    )
}

fn trace_id(headers: &axum::http::HeaderMap) -> Option<String> {
    let valid = |id: &str| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit());
    if let Some(value) = headers
        .get("x-cloud-trace-context")
        .and_then(|v| v.to_str().ok())
    {
        let id = value.split('/').next().unwrap_or("");
        if valid(id) {
            return Some(id.to_ascii_lowercase());
        }
    }
    let value = headers.get("traceparent")?.to_str().ok()?;
    let id = value.split('-').nth(1)?;
    valid(id).then(|| id.to_ascii_lowercase())
}

/// The request-log layer of both services: a span per request (see [`request_span`]) and one
/// INFO line per response with its status and latency (`RUST_LOG=warn` silences them).
pub fn http_trace_layer(
    project: Option<String>,
) -> tower_http::trace::TraceLayer<
    tower_http::classify::SharedClassifier<tower_http::classify::ServerErrorsAsFailures>,
    impl Fn(&axum::http::Request<axum::body::Body>) -> tracing::Span + Clone,
    tower_http::trace::DefaultOnRequest,
    tower_http::trace::DefaultOnResponse,
> {
    tower_http::trace::TraceLayer::new_for_http()
        .make_span_with(move |request: &axum::http::Request<axum::body::Body>| {
            request_span(project.as_deref(), request)
        })
        .on_response(
            tower_http::trace::DefaultOnResponse::new()
                .level(tracing::Level::INFO)
                .latency_unit(tower_http::LatencyUnit::Micros),
        )
}

/// `GET /metrics`: the registry in the OpenMetrics text format Prometheus scrapes.
pub fn metrics_response(
    registry: &prometheus_client::registry::Registry,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, registry) {
        Ok(()) => (
            [(
                axum::http::header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(_) => axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_from_either_header() {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(
            "x-cloud-trace-context",
            "105445AA7843BC8BF206B12000100000/1;o=1".parse().unwrap(),
        );
        assert_eq!(
            trace_id(&headers).as_deref(),
            Some("105445aa7843bc8bf206b12000100000")
        );
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .unwrap(),
        );
        assert_eq!(
            trace_id(&headers).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        headers.insert("traceparent", "garbage".parse().unwrap());
        assert_eq!(trace_id(&headers), None);
    }
}
