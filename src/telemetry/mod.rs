//! Operator telemetry: logs (a tracing subscriber writing to stderr, as text or JSON lines),
//! Prometheus metrics ([`metrics`]) and the HTTP endpoints that serve them ([`http`]).

pub mod http;
pub mod metrics;

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

pub use metrics::Metrics;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors: `timestamp`, `level`, `target`,
    /// `message`, and every field of the line and of its spans (`canary`, `revision`,
    /// `commit`, …) at the top level.
    Json,
}

/// Installs the global subscriber with text lines. `RUST_LOG` wins over `default_level`.
pub fn init(default_level: &str) {
    init_with_format(default_level, LogFormat::Text);
}

/// Installs the global subscriber. `RUST_LOG` wins over `default_level` when set.
pub fn init_with_format(default_level: &str, format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (e.g. in tests) keeps the first subscriber.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        // Span fields are kept as JSON so that the event formatter can lift them.
        LogFormat::Json => builder
            .fmt_fields(JsonFields::new())
            .event_format(FlatJson)
            .try_init(),
    };
}

/// tracing-subscriber's own JSON format nests span fields under `span`/`spans`; a collector
/// filtering on `revision` wants it beside `canary`, so this format puts the fields of the
/// line's spans (outermost first) and then the line's own at the top level.
struct FlatJson;

impl<S> FormatEvent<S, JsonFields> for FlatJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut timestamp = String::new();
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        let meta = event.metadata();
        let mut object = Map::new();
        object.insert("timestamp".into(), Value::String(timestamp));
        object.insert("level".into(), Value::String(meta.level().to_string()));
        object.insert("target".into(), Value::String(meta.target().to_string()));
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                let Some(fields) = extensions.get::<FormattedFields<JsonFields>>() else {
                    continue;
                };
                // A span without fields formats as an empty string, not `{}`.
                if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(&fields.fields) {
                    object.extend(fields);
                }
            }
        }
        event.record(&mut JsonVisitor(&mut object));
        let line = serde_json::to_string(&object).map_err(|_| fmt::Error)?;
        writeln!(writer, "{line}")
    }
}

/// Collects an event's fields into a JSON object.
struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl Visit for JsonVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), Value::from(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), Value::from(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), Value::from(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `message` arrives as format arguments, whose Debug is their text.
        self.0
            .insert(field.name().into(), Value::String(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A writer the test can read back.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("buffer lock").extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn json_lines_carry_span_and_event_fields_at_the_top_level() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .fmt_fields(JsonFields::new())
            .event_format(FlatJson)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("tick", revision = tracing::field::Empty);
            let _entered = span.enter();
            span.record("revision", "5d7f8c9b");
            tracing::info!(
                canary = "podinfo.test",
                weight = 10,
                "Advance podinfo.test canary weight 10"
            );
        });
        let text =
            String::from_utf8(buffer.0.lock().expect("buffer lock").clone()).expect("utf-8 log");
        let line: Value = serde_json::from_str(text.trim()).expect("one JSON line");
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["message"], "Advance podinfo.test canary weight 10");
        assert_eq!(line["canary"], "podinfo.test");
        assert_eq!(line["revision"], "5d7f8c9b");
        assert_eq!(line["weight"], 10);
        assert!(line["timestamp"].as_str().is_some_and(|t| t.contains('T')));
    }
}
