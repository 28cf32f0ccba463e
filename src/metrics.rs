//! What the server counts as it works, for the Prometheus endpoint (`[metrics] listen`): the
//! counters and histograms the sessions bump as they go (commands and their latency, logins,
//! penalties, refusals, bytes, deliveries, store commits), kept once per process, and the
//! exposition, where a server adds what it reads at scrape time (sessions by state, the store,
//! the queue, a front end's back ends) through a `Collector`.
//!
//! Every label value is one of a fixed set (a command's name from its table, a protocol, a
//! reason), so a client cannot make the series grow. Updates are atomic adds, or a short
//! uncontended lock for a histogram; nothing here blocks a core loop.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CommandLabels {
    protocol: &'static str,
    command: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LoginLabels {
    mechanism: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    protocol: &'static str,
    limit: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

struct Metrics {
    commands: Family<CommandLabels, Histogram>,
    logins: Family<LoginLabels, Counter>,
    penalties: Counter,
    penalty_seconds: Counter<f64, std::sync::atomic::AtomicU64>,
    refusals: Family<RefusalLabels, Counter>,
    bytes_received: Counter,
    bytes_sent: Counter,
    lmtp: Family<ResultLabels, Counter>,
    submission: Family<ResultLabels, Counter>,
    commit_ops: Histogram,
    commit_seconds: Histogram,
    tls_passes: Family<ResultLabels, Counter>,
}

/// Latency buckets from 50 µs to about 13 s.
fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.000_05, 4.0, 10)
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| Metrics {
    commands: Family::new_with_constructor(|| Histogram::new(latency_buckets())),
    logins: Family::default(),
    penalties: Counter::default(),
    penalty_seconds: Counter::default(),
    refusals: Family::default(),
    bytes_received: Counter::default(),
    bytes_sent: Counter::default(),
    lmtp: Family::default(),
    submission: Family::default(),
    commit_ops: Histogram::new(exponential_buckets(1.0, 4.0, 8)),
    commit_seconds: Histogram::new(latency_buckets()),
    tls_passes: Family::default(),
});

/// A command of `protocol` finished after `took`. IDLE's time is the client's, not ours: it
/// is counted without a latency.
pub fn command(protocol: &'static str, command: &'static str, took: Duration) {
    let labels = CommandLabels { protocol, command };
    let seconds = if command == "IDLE" { 0.0 } else { took.as_secs_f64() };
    METRICS.commands.get_or_create(&labels).observe(seconds);
}

/// How a login ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginResult {
    Ok,
    BadCredentials,
    Refused,
    Limit,
    Temporary,
}

impl LoginResult {
    fn name(self) -> &'static str {
        match self {
            LoginResult::Ok => "ok",
            LoginResult::BadCredentials => "bad-credentials",
            LoginResult::Refused => "refused",
            LoginResult::Limit => "limit",
            LoginResult::Temporary => "temporary",
        }
    }
}

/// A login by `mechanism` ended with `result`.
pub fn login(mechanism: &'static str, result: LoginResult) {
    let labels = LoginLabels {
        mechanism,
        result: result.name(),
    };
    METRICS.logins.get_or_create(&labels).inc();
}

/// A failed login was held back `delay` before its answer.
pub fn penalty(delay: Duration) {
    METRICS.penalties.inc();
    METRICS.penalty_seconds.inc_by(delay.as_secs_f64());
}

/// A connection of `protocol` was refused at the door by `limit` (`server`, `address`).
pub fn refused(protocol: &'static str, limit: &'static str) {
    METRICS.refusals.get_or_create(&RefusalLabels { protocol, limit }).inc();
}

pub fn received(bytes: usize) {
    METRICS.bytes_received.inc_by(bytes as u64);
}

pub fn sent(bytes: usize) {
    METRICS.bytes_sent.inc_by(bytes as u64);
}

/// An LMTP recipient's delivery ended with `result` (`delivered`, `temporary`, `permanent`).
pub fn lmtp_delivery(result: &'static str) {
    METRICS.lmtp.get_or_create(&ResultLabels { result }).inc();
}

/// A submitted message was taken (`accepted`) or not.
pub fn submission(result: &'static str) {
    METRICS.submission.get_or_create(&ResultLabels { result }).inc();
}

/// The store's writer committed a batch of `ops` writes in `took`.
pub fn commit(ops: usize, took: Duration) {
    METRICS.commit_ops.observe(ops as f64);
    METRICS.commit_seconds.observe(took.as_secs_f64());
}

/// A front end passed a TLS client's session to its back end after login (`passed`), or
/// kept it (`kept`: a key update under way, or the back end spoke first).
pub fn tls_pass(result: &'static str) {
    METRICS.tls_passes.get_or_create(&ResultLabels { result }).inc();
}

/// The exposition's media type (OpenMetrics text, which Prometheus reads).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The exposition in the Prometheus text format: the process's counters, and what
/// `collector` reads now.
pub fn render(collector: impl Collector) -> String {
    let m = &*METRICS;
    let mut registry = Registry::with_prefix("ringmail");
    registry.register_with_unit(
        "command_duration",
        "Commands by protocol and name, and how long each took to answer (IDLE counts 0)",
        Unit::Seconds,
        m.commands.clone(),
    );
    registry.register(
        "logins",
        "Login attempts by mechanism (a SASL mechanism, LOGIN-command for IMAP LOGIN, USER for POP3 USER/PASS) and what checking them found (credentials, policy, per-user limit)",
        m.logins.clone(),
    );
    registry.register(
        "login_penalties",
        "Failed logins held back before their answer",
        m.penalties.clone(),
    );
    registry.register_with_unit(
        "login_penalty",
        "Time failed logins were held back",
        Unit::Seconds,
        m.penalty_seconds.clone(),
    );
    registry.register(
        "limit_refusals",
        "Connections refused by a connection limit, by protocol and limit",
        m.refusals.clone(),
    );
    registry.register_with_unit(
        "received",
        "Bytes read from connections (a front end's both sides; spliced relay bytes not counted)",
        Unit::Bytes,
        m.bytes_received.clone(),
    );
    registry.register_with_unit(
        "sent",
        "Bytes written to connections",
        Unit::Bytes,
        m.bytes_sent.clone(),
    );
    registry.register(
        "lmtp_deliveries",
        "LMTP recipients by the outcome of their delivery",
        m.lmtp.clone(),
    );
    registry.register(
        "submission_messages",
        "Messages submitted by authenticated clients, by outcome",
        m.submission.clone(),
    );
    registry.register(
        "store_commit_batch",
        "Writes per commit of the store's writer",
        m.commit_ops.clone(),
    );
    registry.register_with_unit(
        "store_commit",
        "How long the store's writer took to commit a batch, fsync included",
        Unit::Seconds,
        m.commit_seconds.clone(),
    );
    registry.register(
        "tls_sessions_passed",
        "Front end: TLS clients' sessions at login, passed to the back end or kept here",
        m.tls_passes.clone(),
    );
    registry.register_collector(Box::new(collector));
    let mut text = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut text, &registry);
    text
}

/// The metrics endpoint's answer: the exposition at `/metrics` (with what `collector` reads
/// then), nothing elsewhere.
pub fn endpoint<C: Collector + Clone>(collector: C) -> crate::http::Handler {
    std::sync::Arc::new(move |request| {
        if request.path != "/metrics" {
            return crate::http::Response::status(404, "not found: the metrics are at /metrics");
        }
        if request.method != hyper::Method::GET && request.method != hyper::Method::HEAD {
            return crate::http::Response::status(405, "GET only");
        }
        crate::http::Response::ok(CONTENT_TYPE, render(collector.clone()))
    })
}

/// Starts the metrics endpoint of `config`, if it has one, with `collector` for what is read
/// at scrape time.
pub fn start<C: Collector + Clone>(
    config: &crate::config::Config,
    collector: C,
) -> Result<Option<crate::http::Server>, crate::serve::ServeError> {
    if config.metrics.listen.is_empty() {
        return Ok(None);
    }
    let listeners = config
        .metrics
        .listen
        .iter()
        .map(|&addr| crate::http::Listener { addr, tls: None })
        .collect();
    crate::http::Server::start("ringmail-metrics", listeners, endpoint(collector)).map(Some)
}

/// Encodes a gauge family made on the spot (the collectors' values read at scrape time).
pub fn encode_gauges<L: EncodeLabelSet + Clone + std::hash::Hash + Eq + std::fmt::Debug + Send + Sync + 'static>(
    encoder: &mut prometheus_client::encoding::DescriptorEncoder<'_>,
    (name, help): (&str, &str),
    values: impl IntoIterator<Item = (L, i64)>,
) -> Result<(), std::fmt::Error> {
    use prometheus_client::encoding::EncodeMetric;
    use prometheus_client::metrics::gauge::Gauge;
    let family = Family::<L, Gauge>::default();
    for (labels, value) in values {
        family.get_or_create(&labels).set(value);
    }
    let metric = encoder.encode_descriptor(name, help, None, family.metric_type())?;
    family.encode(metric)
}

/// Encodes one unlabelled gauge.
pub fn encode_gauge(
    encoder: &mut prometheus_client::encoding::DescriptorEncoder<'_>,
    (name, help): (&str, &str),
    value: i64,
) -> Result<(), std::fmt::Error> {
    use prometheus_client::encoding::EncodeMetric;
    use prometheus_client::metrics::gauge::ConstGauge;
    let gauge = ConstGauge::new(value);
    let metric = encoder.encode_descriptor(name, help, None, gauge.metric_type())?;
    gauge.encode(metric)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SessionLabels {
    pub protocol: &'static str,
    pub state: &'static str,
}

/// The sessions of `registry` by protocol and state (every state of each protocol, zeros
/// included, so a series does not vanish when it empties).
pub fn encode_sessions(
    encoder: &mut prometheus_client::encoding::DescriptorEncoder<'_>,
    registry: &crate::sessions::Registry,
    protocols: &[&'static str],
) -> Result<(), std::fmt::Error> {
    use crate::engine::Phase;
    let mut counts = std::collections::HashMap::new();
    for p in protocols {
        for phase in Phase::ALL {
            counts.insert((*p, phase.name()), 0i64);
        }
    }
    for s in registry.list() {
        *counts.entry((s.protocol(), s.phase().name())).or_default() += 1;
    }
    let values = counts
        .into_iter()
        .map(|((protocol, state), n)| (SessionLabels { protocol, state }, n));
    encode_gauges(
        encoder,
        (
            "connections",
            "Open connections by protocol and state (idle: IMAP IDLE)",
        ),
        values,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Nothing;
    impl Collector for Nothing {
        fn encode(&self, _: prometheus_client::encoding::DescriptorEncoder) -> Result<(), std::fmt::Error> {
            Ok(())
        }
    }

    #[test]
    fn counted_things_appear_in_the_exposition() {
        command("imap", "NOOP", Duration::from_micros(70));
        login("PLAIN", LoginResult::BadCredentials);
        let text = render(Nothing);
        assert!(text.contains("ringmail_command_duration_seconds_count{protocol=\"imap\",command=\"NOOP\"}"));
        assert!(text.contains("ringmail_logins_total{mechanism=\"PLAIN\",result=\"bad-credentials\"}"));
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
