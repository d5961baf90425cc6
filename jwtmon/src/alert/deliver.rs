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
    transport::smtp::authentication::Credentials,
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
const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

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
                let builder = match cfg.smtp_tls {
                    SmtpTls::Starttls => {
                        AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&host)
                    }
                    SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&host),
                    SmtpTls::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                        &host,
                    )),
                }
                .map_err(|e| setup(e.to_string()))?;
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
                .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
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
                            .min(Duration::from_secs(60))
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
