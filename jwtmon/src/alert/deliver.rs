//! Delivery: one task and one bounded queue per sink, so a slow or dead
//! sink holds up nothing but itself. Before queueing, the sink's severity
//! threshold and per-minute rate limit apply; a full queue drops and
//! counts. Each alert is tried with exponential backoff on 5xx, 429
//! (Retry-After honoured), timeouts and connection errors, then given up
//! and counted. Webhook URLs and SMTP passwords never reach a log line.

use std::{
    collections::VecDeque,
    sync::Arc,
    time::{Duration, Instant},
};

use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, MultiPart},
    transport::smtp::{
        authentication::Credentials,
        client::{Certificate, Tls, TlsParameters},
    },
};
use tokio::{sync::mpsc, task::JoinHandle};
use tracing::{info, warn};

use super::{
    Alert,
    config::{AlertConfig, SinkConfig, SinkType, SmtpTls},
    format,
};
use crate::{
    finding::Severity,
    metrics::Metrics,
    secret::{self, Secret, SecretError},
};

/// Why a sink cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Its secret.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// Anything else, with the sink's name.
    #[error("alerts.sinks `{0}`: {1}")]
    Setup(String, String),
}

#[expect(
    clippy::large_enum_variant,
    reason = "one Transport per configured sink, built once at start"
)]
enum Transport {
    Http {
        client: reqwest::Client,
        url: Secret,
        slack: bool,
    },
    Smtp {
        mailer: AsyncSmtpTransport<Tokio1Executor>,
        from: Mailbox,
        to: Vec<Mailbox>,
    },
}

enum Failure {
    Retry {
        after: Option<Duration>,
        why: String,
    },
    Fatal(String),
}

/// Longest wait honoured from a Retry-After.
const MAX_RETRY_AFTER: Duration = Duration::from_mins(10);

impl Transport {
    fn build(cfg: &SinkConfig) -> Result<Self, SinkError> {
        let setup = |why: String| SinkError::Setup(cfg.name.clone(), why);
        match cfg.kind {
            SinkType::Slack | SinkType::Webhook => {
                let what = format!("alerts.sinks `{}` url", cfg.name);
                let url = secret::load(&what, cfg.url_file.as_deref(), cfg.url_env.as_deref())?
                    .ok_or_else(|| setup("no url_file or url_env".into()))?;
                match reqwest::Url::parse(url.expose()) {
                    Ok(u) if u.scheme() == "https" || u.scheme() == "http" => {}
                    _ => {
                        return Err(setup(
                            "the URL (from url_file/url_env) is not an http(s) URL".into(),
                        ));
                    }
                }
                let client = reqwest::Client::builder()
                    .timeout(cfg.timeout)
                    .user_agent(concat!("jwtmon/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .map_err(|e| setup(e.without_url().to_string()))?;
                Ok(Transport::Http {
                    client,
                    url,
                    slack: cfg.kind == SinkType::Slack,
                })
            }
            SinkType::Email => {
                let host = cfg.smtp_host.clone().unwrap_or_default();
                let tls = || -> Result<TlsParameters, SinkError> {
                    let mut params = TlsParameters::builder(host.clone());
                    if let Some(ca) = &cfg.smtp_ca_file {
                        let bad =
                            |why: String| setup(format!("smtp_ca_file {}: {why}", ca.display()));
                        let pem = std::fs::read(ca).map_err(|e| bad(e.to_string()))?;
                        if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
                            return Err(bad("no PEM certificate in it".into()));
                        }
                        let cert = Certificate::from_pem(&pem).map_err(|e| bad(e.to_string()))?;
                        params = params.add_root_certificate(cert);
                    }
                    params.build_rustls().map_err(|e| setup(e.to_string()))
                };
                let builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&host);
                let builder = match cfg.smtp_tls {
                    // Required: no credentials or mail unless the upgrade works.
                    SmtpTls::Starttls => builder.tls(Tls::Required(tls()?)),
                    SmtpTls::Tls => builder.tls(Tls::Wrapper(tls()?)),
                    SmtpTls::None => builder,
                };
                let port = cfg.smtp_port.unwrap_or(match cfg.smtp_tls {
                    SmtpTls::Starttls => 587,
                    SmtpTls::Tls => 465,
                    SmtpTls::None => 25,
                });
                let mut builder = builder.port(port).timeout(Some(cfg.timeout));
                if let Some(user) = &cfg.smtp_username {
                    let what = format!("alerts.sinks `{}` smtp password", cfg.name);
                    let pw = secret::load(
                        &what,
                        cfg.smtp_password_file.as_deref(),
                        cfg.smtp_password_env.as_deref(),
                    )?
                    .ok_or_else(|| setup("smtp_username without a password".into()))?;
                    builder =
                        builder.credentials(Credentials::new(user.clone(), pw.expose().into()));
                }
                let parse = |s: &str| {
                    s.parse::<Mailbox>()
                        .map_err(|e| setup(format!("`{s}` is not an e-mail address: {e}")))
                };
                Ok(Transport::Smtp {
                    mailer: builder.build(),
                    from: parse(cfg.from.as_deref().unwrap_or_default())?,
                    to: cfg.to.iter().map(|t| parse(t)).collect::<Result<_, _>>()?,
                })
            }
        }
    }

    async fn send(&self, a: &Alert) -> Result<(), Failure> {
        match self {
            Transport::Http { client, url, slack } => {
                let body = if *slack {
                    format::slack(a)
                } else {
                    format::webhook(a)
                };
                let resp = client
                    .post(url.expose())
                    .json(&body)
                    .send()
                    .await
                    .map_err(|e| Failure::Retry {
                        after: None,
                        why: e.without_url().to_string(),
                    })?;
                let status = resp.status();
                if status.is_success() {
                    return Ok(());
                }
                let after = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER));
                let why = format!("HTTP {status}");
                if status.as_u16() == 429 || status.is_server_error() || status.as_u16() == 408 {
                    Err(Failure::Retry { after, why })
                } else {
                    Err(Failure::Fatal(why))
                }
            }
            Transport::Smtp { mailer, from, to } => {
                let (subject, text, html) = format::email(a);
                let mut m = Message::builder().from(from.clone()).subject(subject);
                for t in to {
                    m = m.to(t.clone());
                }
                let msg = m
                    .multipart(MultiPart::alternative_plain_html(text, html))
                    .map_err(|e| Failure::Fatal(e.to_string()))?;
                match mailer.send(msg).await {
                    Ok(_) => Ok(()),
                    Err(e) if e.is_permanent() => Err(Failure::Fatal(e.to_string())),
                    Err(e) => Err(Failure::Retry {
                        after: None,
                        why: e.to_string(),
                    }),
                }
            }
        }
    }
}

struct Sink {
    name: String,
    min: Severity,
    per_minute: u32,
    recent: VecDeque<Instant>,
    tx: mpsc::Sender<Alert>,
}

/// The sinks' front: threshold, rate limit and queue per sink.
pub struct Sinks {
    sinks: Vec<Sink>,
    metrics: Arc<Metrics>,
}

impl Sinks {
    /// Loads the secrets, builds the transports and starts one delivery
    /// task per sink.
    pub fn start(
        cfg: &AlertConfig,
        metrics: Arc<Metrics>,
    ) -> Result<(Self, Vec<JoinHandle<()>>), SinkError> {
        let mut sinks = Vec::new();
        let mut tasks = Vec::new();
        for s in &cfg.sinks {
            let transport = Transport::build(s)?;
            let (tx, rx) = mpsc::channel(s.queue.max(1));
            tasks.push(tokio::spawn(run(
                s.name.clone(),
                transport,
                rx,
                s.max_retries,
                s.retry_backoff,
                metrics.clone(),
            )));
            info!(sink = %s.name, kind = ?s.kind, min_severity = %s.min_severity, "alert sink ready");
            sinks.push(Sink {
                name: s.name.clone(),
                min: s.min_severity,
                per_minute: s.max_per_minute,
                recent: VecDeque::new(),
                tx,
            });
        }
        Ok((Self { sinks, metrics }, tasks))
    }

    /// Whether any sink is configured.
    pub fn is_empty(&self) -> bool {
        self.sinks.is_empty()
    }

    /// Hands an alert to every sink whose threshold it meets; never waits.
    pub fn dispatch(&mut self, a: &Alert, now: Instant) {
        for s in &mut self.sinks {
            if a.severity < s.min {
                continue;
            }
            while s
                .recent
                .front()
                .is_some_and(|t| now.duration_since(*t) >= Duration::from_mins(1))
            {
                s.recent.pop_front();
            }
            let failed = |reason: &str| {
                self.metrics
                    .alerts_failed
                    .get_or_create(&vec![
                        ("sink", s.name.clone()),
                        ("reason", reason.to_string()),
                    ])
                    .inc();
            };
            if s.per_minute > 0 && s.recent.len() >= s.per_minute as usize {
                failed("rate_limited");
                warn!(sink = %s.name, incident = a.incident_id, max_per_minute = s.per_minute,
                      "alert dropped: sink rate limit");
                continue;
            }
            if s.tx.try_send(a.clone()).is_err() {
                failed("queue_full");
                warn!(sink = %s.name, incident = a.incident_id, "alert dropped: sink queue full");
                continue;
            }
            s.recent.push_back(now);
        }
    }
}

/// One sink's delivery loop: ends when the front is dropped and the queue
/// is empty.
async fn run(
    name: String,
    transport: Transport,
    mut rx: mpsc::Receiver<Alert>,
    retries: u32,
    backoff: Duration,
    metrics: Arc<Metrics>,
) {
    let label = Metrics::label("sink", &name);
    while let Some(a) = rx.recv().await {
        let mut attempt = 0;
        loop {
            match transport.send(&a).await {
                Ok(()) => {
                    metrics.alerts_sent.get_or_create(&label).inc();
                    info!(sink = %name, incident = a.incident_id, kind = %a.kind, count = a.count,
                          attempts = attempt + 1, "alert sent");
                    break;
                }
                Err(Failure::Retry { after, why }) if attempt < retries => {
                    let wait = after.unwrap_or_else(|| {
                        backoff
                            .saturating_mul(1 << attempt.min(16))
                            .min(Duration::from_mins(1))
                    });
                    warn!(sink = %name, incident = a.incident_id, error = %why, attempt = attempt + 1,
                          retry_in_ms = wait.as_millis() as u64, "alert delivery failed; retrying");
                    attempt += 1;
                    tokio::time::sleep(wait).await;
                }
                Err(Failure::Retry { why, .. } | Failure::Fatal(why)) => {
                    metrics
                        .alerts_failed
                        .get_or_create(&vec![("sink", name.clone()), ("reason", "delivery".into())])
                        .inc();
                    warn!(sink = %name, incident = a.incident_id, error = %why, attempts = attempt + 1,
                          "alert given up");
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::Mutex,
        time::{Duration, Instant, SystemTime},
    };

    use axum::{http::StatusCode, response::IntoResponse, routing::post};

    use super::*;
    use crate::alert::config::SinkConfig;

    fn alert(severity: Severity) -> Alert {
        Alert {
            incident_id: 1,
            kind: "login_bruteforce".into(),
            severity,
            source: "px-0000000000000001".into(),
            subject: None,
            token_id: None,
            endpoint: "POST /login".into(),
            action: "block_ip".into(),
            ttl_s: Some(600),
            status: "mitigated".into(),
            evidence: String::new(),
            count: 1,
            incident_count: 1,
            first_seen: SystemTime::UNIX_EPOCH,
            last_seen: SystemTime::UNIX_EPOCH,
            follow_up: false,
        }
    }

    fn sink(url_env: &str, queue: usize, per_minute: u32) -> SinkConfig {
        SinkConfig {
            name: "hook".into(),
            kind: SinkType::Webhook,
            min_severity: Severity::High,
            max_per_minute: per_minute,
            queue,
            max_retries: 3,
            retry_backoff: Duration::from_secs(30),
            timeout: Duration::from_secs(2),
            url_file: None,
            url_env: Some(url_env.into()),
            smtp_host: None,
            smtp_port: None,
            smtp_tls: SmtpTls::None,
            smtp_ca_file: None,
            smtp_username: None,
            smtp_password_file: None,
            smtp_password_env: None,
            from: None,
            to: Vec::new(),
        }
    }

    fn failed(m: &Metrics, sink: &str, reason: &str) -> u64 {
        m.alerts_failed
            .get_or_create(&vec![
                ("sink", sink.to_string()),
                ("reason", reason.to_string()),
            ])
            .get()
    }

    #[tokio::test]
    async fn threshold_rate_limit_and_full_queue_are_counted() {
        // Nothing listens on port 9: every attempt fails and waits 30 s.
        unsafe { std::env::set_var("JWTMON_TEST_DEAD_HOOK", "http://127.0.0.1:9/x") };
        let metrics = Arc::new(Metrics::new());
        let mut limited = sink("JWTMON_TEST_DEAD_HOOK", 10, 3);
        limited.name = "limited".into();
        let mut narrow = sink("JWTMON_TEST_DEAD_HOOK", 1, 0);
        narrow.name = "narrow".into();
        let cfg = AlertConfig {
            sinks: vec![limited, narrow],
            ..Default::default()
        };
        let (mut sinks, tasks) = Sinks::start(&cfg, metrics.clone()).unwrap();
        let now = Instant::now();
        sinks.dispatch(&alert(Severity::Medium), now);
        tokio::time::sleep(Duration::from_millis(50)).await;
        for _ in 0..5 {
            sinks.dispatch(&alert(Severity::Critical), now);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Below the threshold: neither sent nor failed. Past 3 a minute:
        // rate limited. One in delivery, one queued, then the queue is full.
        assert_eq!(failed(&metrics, "limited", "rate_limited"), 2);
        assert_eq!(failed(&metrics, "limited", "queue_full"), 0);
        assert_eq!(failed(&metrics, "narrow", "queue_full"), 3);
        assert_eq!(failed(&metrics, "narrow", "rate_limited"), 0);
        // A minute later the limit has room again.
        sinks.dispatch(&alert(Severity::High), now + Duration::from_secs(61));
        assert_eq!(failed(&metrics, "limited", "rate_limited"), 2);
        for t in tasks {
            t.abort();
        }
    }

    #[tokio::test]
    async fn retries_5xx_honours_retry_after_and_gives_up() {
        let hits: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
        let h = hits.clone();
        let app = axum::Router::new().route(
            "/{path}",
            post(
                move |axum::extract::Path(path): axum::extract::Path<String>| {
                    let h = h.clone();
                    async move {
                        let n = {
                            let mut v = h.lock().unwrap();
                            v.push((path.clone(), Instant::now()));
                            v.iter().filter(|(p, _)| *p == path).count()
                        };
                        match (path.as_str(), n) {
                            ("slow", 1) => (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")])
                                .into_response(),
                            ("flaky", 1) => StatusCode::BAD_GATEWAY.into_response(),
                            ("bad", _) => StatusCode::NOT_FOUND.into_response(),
                            ("down", _) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
                            _ => StatusCode::OK.into_response(),
                        }
                    }
                },
            ),
        );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(l, app).await });
        let metrics = Arc::new(Metrics::new());
        let mut cfg = AlertConfig::default();
        for path in ["slow", "flaky", "bad", "down"] {
            let var = format!("JWTMON_TEST_HOOK_{path}");
            unsafe { std::env::set_var(&var, format!("http://127.0.0.1:{port}/{path}")) };
            let mut s = sink(&var, 10, 0);
            s.name = path.into();
            s.retry_backoff = Duration::from_millis(50);
            s.max_retries = 2;
            cfg.sinks.push(s);
        }
        let (mut sinks, tasks) = Sinks::start(&cfg, metrics.clone()).unwrap();
        sinks.dispatch(&alert(Severity::High), Instant::now());
        drop(sinks);
        for t in tasks {
            tokio::time::timeout(Duration::from_secs(10), t)
                .await
                .unwrap()
                .unwrap();
        }
        let hits = hits.lock().unwrap().clone();
        let at = |p: &str| {
            hits.iter()
                .filter(|(q, _)| q == p)
                .map(|(_, t)| *t)
                .collect::<Vec<_>>()
        };
        let slow = at("slow");
        assert_eq!(slow.len(), 2);
        assert!(
            slow[1] - slow[0] >= Duration::from_millis(950),
            "Retry-After: 1 was honoured"
        );
        assert_eq!(at("flaky").len(), 2, "5xx retried once, then delivered");
        assert_eq!(at("bad").len(), 1, "a 404 is not retried");
        assert_eq!(at("down").len(), 3, "two retries, then given up");
        let sent = |s: &str| {
            metrics
                .alerts_sent
                .get_or_create(&Metrics::label("sink", s))
                .get()
        };
        assert_eq!(
            (sent("slow"), sent("flaky"), sent("bad"), sent("down")),
            (1, 1, 0, 0)
        );
        let gave_up = |s: &str| {
            metrics
                .alerts_failed
                .get_or_create(&vec![
                    ("sink", s.to_string()),
                    ("reason", "delivery".to_string()),
                ])
                .get()
        };
        assert_eq!((gave_up("bad"), gave_up("down")), (1, 1));
    }
}
