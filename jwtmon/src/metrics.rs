//! Prometheus metrics (`/metrics`, text format, prometheus-client): the
//! kernel's packet and sampling counters (read at scrape time), parse
//! failures, findings by kind, blocks, alerts by sink, incident writes and
//! the capture → finding latency. Owns `[metrics]` and its HTTP listener.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use prometheus_client::{
    encoding::text::encode,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};
use serde::{Deserialize, Serialize};

/// `[metrics]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Where `/metrics` listens; empty to switch it off.
    pub listen: String,
    /// Allow a non-loopback address (metrics tell an attacker what is
    /// detected; expose them only to your Prometheus).
    pub allow_remote: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9917".into(),
            allow_remote: false,
        }
    }
}

impl MetricsConfig {
    /// The address to listen on, `None` when off; an error for a bad or
    /// (without `allow_remote`) non-loopback address.
    pub fn address(&self) -> Result<Option<SocketAddr>, String> {
        if self.listen.is_empty() {
            return Ok(None);
        }
        let addr: SocketAddr = self.listen.parse().map_err(|_| {
            format!(
                "metrics.listen = `{}`: expected IP:PORT, e.g. 127.0.0.1:9917",
                self.listen
            )
        })?;
        if !addr.ip().is_loopback() && !self.allow_remote {
            return Err(format!(
                "metrics.listen = `{}` is not a loopback address; set metrics.allow_remote = true to expose it",
                self.listen
            ));
        }
        Ok(Some(addr))
    }
}

type Labels = Vec<(&'static str, String)>;

/// Every metric the daemon exports.
pub struct Metrics {
    registry: Registry,
    kernel: Vec<(&'static str, Counter)>,
    /// HTTP requests that did not parse (all reasons).
    pub parse_failures: Counter,
    /// Findings by kind and severity.
    pub findings: Family<Labels, Counter>,
    /// Block entries in force.
    pub blocks_active: Gauge,
    /// Blocks the decision engine put in force, by kind.
    pub blocks_issued: Family<Labels, Counter>,
    /// Alerts delivered, by sink.
    pub alerts_sent: Family<Labels, Counter>,
    /// Alerts not delivered, by sink and reason.
    pub alerts_failed: Family<Labels, Counter>,
    /// Capture → finding latency.
    pub latency: Histogram,
    /// Incident states written to the database.
    pub incidents_written: Counter,
    /// Failed database flushes.
    pub incident_db_errors: Counter,
    /// Incident states held in memory, waiting for the database.
    pub incidents_pending: Gauge,
    /// Incident states dropped (memory bound, full queue).
    pub incidents_dropped: Counter,
    /// Events dropped between stages because a queue was full, by queue.
    pub events_dropped: Family<Labels, Counter>,
    /// Bytes held by the capture stages, by stage (`reassembly`,
    /// `pending`).
    pub buffered_bytes: Family<Labels, Gauge>,
    /// Entries of the token revocation list.
    pub revoked_tokens: Gauge,
    /// Delay from a change on one node to its map entry here.
    pub fleet_propagation: Histogram,
    /// Redis answers (1) or not (0).
    pub fleet_up: Gauge,
    /// Fleet counters by name (`outages`, `published`, `applied`,
    /// `dropped`, `commands`).
    pub fleet_events: Family<Labels, Counter>,
    /// Changes of this node waiting for Redis.
    pub fleet_queued: Gauge,
    /// Library files with TLS probes on.
    pub tls_libraries: Gauge,
    /// TLS capture counters by event (`attach_failures`,
    /// `http2_connections`).
    pub tls_events: Family<Labels, Counter>,
    /// Bearer JWTs by outcome (`analysed`, `cached`, `verify_skipped`).
    pub jwt_tokens: Family<Labels, Counter>,
}

/// The kernel counters exported, with their names and help.
const KERNEL: [(&str, &str, &str); 11] = [
    (
        "passed",
        "jwtmon_packets_passed",
        "Packets the XDP program passed",
    ),
    (
        "dropped",
        "jwtmon_packets_dropped",
        "Packets dropped by a block entry",
    ),
    (
        "allowlisted",
        "jwtmon_packets_allowlisted",
        "Packets passed because an allowlist entry covers the source",
    ),
    (
        "parse_error",
        "jwtmon_packets_malformed",
        "Packets whose headers did not parse (passed: the datapath fails open)",
    ),
    (
        "sampled",
        "jwtmon_http_samples",
        "HTTP segments sampled into the ring buffer",
    ),
    (
        "skipped_rate",
        "jwtmon_http_samples_skipped",
        "HTTP segments not sampled because of the per-second cap",
    ),
    (
        "ringbuf_full",
        "jwtmon_http_samples_ringbuf_full",
        "HTTP segments lost because the ring buffer was full",
    ),
    (
        "tls_sampled",
        "jwtmon_tls_records",
        "TLS plaintext records (SSL_read/SSL_write) put in the ring buffer",
    ),
    (
        "tls_unattributed",
        "jwtmon_tls_calls_unattributed",
        "TLS calls on sockets not seen accepted (clients, older connections): not analysed",
    ),
    (
        "tls_abandoned",
        "jwtmon_tls_calls_abandoned",
        "TLS calls that never returned (the thread exited mid-call)",
    ),
    (
        "tls_copy_failed",
        "jwtmon_tls_copy_failures",
        "TLS plaintext that could not be read from the traced process",
    ),
];

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// All metrics, registered.
    pub fn new() -> Self {
        let mut r = Registry::default();
        let mut kernel = Vec::new();
        for (key, name, help) in KERNEL {
            let c = Counter::default();
            r.register(name, help, c.clone());
            kernel.push((key, c));
        }
        let m = Self {
            kernel,
            parse_failures: Counter::default(),
            findings: Family::default(),
            blocks_active: Gauge::default(),
            blocks_issued: Family::default(),
            alerts_sent: Family::default(),
            alerts_failed: Family::default(),
            latency: Histogram::new([
                0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
            ]),
            incidents_written: Counter::default(),
            incident_db_errors: Counter::default(),
            incidents_pending: Gauge::default(),
            incidents_dropped: Counter::default(),
            events_dropped: Family::default(),
            buffered_bytes: Family::default(),
            revoked_tokens: Gauge::default(),
            fleet_propagation: Histogram::new([
                0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0,
            ]),
            fleet_up: Gauge::default(),
            fleet_events: Family::default(),
            fleet_queued: Gauge::default(),
            tls_libraries: Gauge::default(),
            tls_events: Family::default(),
            jwt_tokens: Family::default(),
            registry: Registry::default(),
        };
        r.register(
            "jwtmon_http_parse_failures",
            "HTTP requests that did not parse",
            m.parse_failures.clone(),
        );
        r.register(
            "jwtmon_findings",
            "Findings by kind and severity",
            m.findings.clone(),
        );
        r.register(
            "jwtmon_blocks_active",
            "Block entries in force",
            m.blocks_active.clone(),
        );
        r.register(
            "jwtmon_blocks_issued",
            "Blocks put in force by the decision engine, by kind",
            m.blocks_issued.clone(),
        );
        r.register(
            "jwtmon_alerts_sent",
            "Alerts delivered, by sink",
            m.alerts_sent.clone(),
        );
        r.register(
            "jwtmon_alerts_failed",
            "Alerts not delivered, by sink and reason",
            m.alerts_failed.clone(),
        );
        r.register(
            "jwtmon_pipeline_latency_seconds",
            "Time from capture of a request to its finding being decided",
            m.latency.clone(),
        );
        r.register(
            "jwtmon_incidents_written",
            "Incident states written to the register",
            m.incidents_written.clone(),
        );
        r.register(
            "jwtmon_incident_db_errors",
            "Failed incident database flushes",
            m.incident_db_errors.clone(),
        );
        r.register(
            "jwtmon_incidents_pending",
            "Incident states held in memory for the database",
            m.incidents_pending.clone(),
        );
        r.register(
            "jwtmon_incidents_dropped",
            "Incident states dropped (memory bound or full queue)",
            m.incidents_dropped.clone(),
        );
        r.register(
            "jwtmon_events_dropped",
            "Events dropped between stages because a queue was full",
            m.events_dropped.clone(),
        );
        r.register(
            "jwtmon_capture_buffered_bytes",
            "Bytes held by the capture stages (reassembly, requests waiting for responses, the reader's queue)",
            m.buffered_bytes.clone(),
        );
        r.register(
            "jwtmon_revoked_tokens",
            "Entries of the token revocation list",
            m.revoked_tokens.clone(),
        );
        r.register(
            "jwtmon_fleet_propagation_seconds",
            "Delay from a block, unblock or allow on another node to the map entry here",
            m.fleet_propagation.clone(),
        );
        r.register(
            "jwtmon_fleet_up",
            "Redis answers (1) or not (0)",
            m.fleet_up.clone(),
        );
        r.register(
            "jwtmon_fleet_events",
            "Fleet link counters: outages, published, applied, dropped, commands",
            m.fleet_events.clone(),
        );
        r.register(
            "jwtmon_fleet_queued",
            "Changes of this node waiting for Redis",
            m.fleet_queued.clone(),
        );
        r.register(
            "jwtmon_tls_libraries",
            "Library files (OpenSSL) with TLS probes on",
            m.tls_libraries.clone(),
        );
        r.register(
            "jwtmon_tls_events",
            "TLS capture counters: attach_failures, http2_connections (not analysed)",
            m.tls_events.clone(),
        );
        r.register(
            "jwtmon_jwt_tokens",
            "Bearer JWTs by outcome: analysed (all), cached (verdict reused), verify_skipped (signature not checked: verify_budget spent)",
            m.jwt_tokens.clone(),
        );
        Self { registry: r, ..m }
    }

    /// Sets a counter to an absolute value read elsewhere (kernel maps,
    /// stage counters).
    pub fn set_counter(c: &Counter, v: u64) {
        let a: &AtomicU64 = c.inner();
        a.store(v, Ordering::Relaxed);
    }

    /// Copies the kernel's global counters, read by name from `totals`.
    pub fn set_kernel(&self, totals: impl Fn(&str) -> u64) {
        for (key, c) in &self.kernel {
            Self::set_counter(c, totals(key));
        }
    }

    /// Counts one finding.
    pub fn finding(&self, kind: &str, severity: crate::finding::Severity) {
        self.findings
            .get_or_create(&vec![
                ("kind", kind.to_string()),
                ("severity", severity.to_string()),
            ])
            .inc();
    }

    /// A one-label set.
    pub fn label(name: &'static str, value: &str) -> Labels {
        vec![(name, value.to_string())]
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// What a scrape refreshes first (the kernel's counters, read by the
/// caller that owns the maps).
pub type Refresh = Box<dyn FnMut(&Metrics) + Send>;

/// Serves `/metrics` on `listener` until `stop` fires; `refresh` runs at
/// each scrape.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    refresh: Refresh,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let refresh = Arc::new(Mutex::new(refresh));
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let metrics = metrics.clone();
            let refresh = refresh.clone();
            async move {
                if let Ok(mut r) = refresh.lock() {
                    r(&metrics);
                }
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    metrics.render(),
                )
            }
        }),
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus_conventions() {
        let m = Metrics::new();
        m.finding("brute_force", crate::finding::Severity::High);
        m.alerts_sent
            .get_or_create(&Metrics::label("sink", "slack"))
            .inc();
        m.latency.observe(0.004);
        m.set_kernel(|k| if k == "dropped" { 7 } else { 0 });
        let text = m.render();
        for line in [
            "jwtmon_packets_dropped_total 7",
            "jwtmon_findings_total{kind=\"brute_force\",severity=\"high\"} 1",
            "jwtmon_alerts_sent_total{sink=\"slack\"} 1",
            "jwtmon_pipeline_latency_seconds_bucket{le=\"0.005\"} 1",
            "# TYPE jwtmon_blocks_active gauge",
        ] {
            assert!(text.contains(line), "{line} missing in\n{text}");
        }
    }

    /// Every series the Grafana dashboard queries exists.
    #[test]
    fn dashboard_queries_existing_metrics() {
        let m = Metrics::new();
        // Labelled families appear with their first series.
        m.finding("k", crate::finding::Severity::Low);
        for f in [
            &m.blocks_issued,
            &m.alerts_sent,
            &m.alerts_failed,
            &m.events_dropped,
        ] {
            f.get_or_create(&Metrics::label("x", "y")).inc();
        }
        let text = m.render();
        let dash: serde_json::Value =
            serde_json::from_str(include_str!("../../docs/grafana-dashboard.json")).unwrap();
        let re = regex::Regex::new(r"jwtmon_[a-z_]+").unwrap();
        let mut checked = 0;
        for p in dash["panels"].as_array().unwrap() {
            for t in p["targets"].as_array().unwrap() {
                for name in re.find_iter(t["expr"].as_str().unwrap()) {
                    let n = name.as_str();
                    let base = ["_total", "_bucket", "_count", "_sum"]
                        .iter()
                        .find_map(|s| n.strip_suffix(s))
                        .unwrap_or(n);
                    assert!(
                        text.contains(&format!("# TYPE {base} ")),
                        "{n} is not exported"
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked >= 20, "{checked}");
    }

    #[test]
    fn listen_address_is_checked() {
        let c = |s: &str| MetricsConfig {
            listen: s.into(),
            allow_remote: false,
        };
        assert!(c("").address().unwrap().is_none());
        assert!(c("127.0.0.1:9917").address().unwrap().is_some());
        assert!(c("[::1]:9917").address().unwrap().is_some());
        assert!(
            c("0.0.0.0:9917")
                .address()
                .unwrap_err()
                .contains("allow_remote")
        );
        assert!(c("localhost").address().unwrap_err().contains("IP:PORT"));
    }
}
