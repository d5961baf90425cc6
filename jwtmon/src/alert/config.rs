//! `[alerts]` and `[[alerts.sinks]]`: grouping windows and the sinks with
//! their thresholds, limits, retry policy and secrets.

use std::{path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};

use crate::finding::Severity;

/// `[alerts]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AlertConfig {
    /// How long the first alert of a kind + source waits to collect more
    /// findings of the same kind + source (they go out as one, with a count).
    #[serde(with = "humantime_serde")]
    pub group_wait: Duration,
    /// After an alert, findings of the same kind + source within this long
    /// are folded into one follow-up alert at its end.
    #[serde(with = "humantime_serde")]
    pub repeat_interval: Duration,
    /// Kind + source groups tracked at once (beyond it, alerts go out
    /// ungrouped).
    pub max_groups: usize,
    /// Where alerts go.
    pub sinks: Vec<SinkConfig>,
}

impl Default for AlertConfig {
    fn default() -> Self {
        Self {
            group_wait: Duration::from_secs(10),
            repeat_interval: Duration::from_mins(5),
            max_groups: 10_000,
            sinks: Vec::new(),
        }
    }
}

/// Sink types.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SinkType {
    /// Slack incoming webhook (Block Kit message).
    Slack,
    /// Generic JSON webhook (PagerDuty-like receivers, SOAR, chat bridges).
    Webhook,
    /// E-mail over SMTP (plain text and HTML).
    Email,
}

/// SMTP connection security.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (required; port 587).
    Starttls,
    /// TLS from the first byte (SMTPS, port 465).
    Tls,
    /// No encryption (a local relay only).
    None,
}

/// `[[alerts.sinks]]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// Name in logs and metrics (`sink` label).
    pub name: String,
    /// `slack`, `webhook` or `email`.
    #[serde(rename = "type")]
    pub kind: SinkType,
    /// Least severity sent here.
    #[serde(default = "default_min_severity")]
    pub min_severity: Severity,
    /// Most alerts per minute; more are dropped and counted.
    #[serde(default = "default_per_minute")]
    pub max_per_minute: u32,
    /// Alerts waiting for delivery; more are dropped and counted.
    #[serde(default = "default_queue")]
    pub queue: usize,
    /// Delivery attempts after the first, on 5xx, 429 and timeouts.
    #[serde(default = "default_retries")]
    pub max_retries: u32,
    /// First retry delay; doubles per attempt up to a minute. A 429's
    /// Retry-After wins.
    #[serde(default = "default_backoff", with = "humantime_serde")]
    pub retry_backoff: Duration,
    /// Per-attempt timeout.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Webhook URL file (slack, webhook).
    pub url_file: Option<PathBuf>,
    /// Webhook URL environment variable (slack, webhook).
    pub url_env: Option<String>,
    /// SMTP server (email).
    pub smtp_host: Option<String>,
    /// SMTP port [default: 587 starttls, 465 tls, 25 none].
    pub smtp_port: Option<u16>,
    /// SMTP security.
    #[serde(default = "default_tls")]
    pub smtp_tls: SmtpTls,
    /// Extra trusted root certificates (PEM) for a server whose certificate
    /// a private CA issued; added to the built-in web roots. starttls/tls.
    pub smtp_ca_file: Option<PathBuf>,
    /// SMTP user (with a password: AUTH PLAIN/LOGIN).
    pub smtp_username: Option<String>,
    /// SMTP password file.
    pub smtp_password_file: Option<PathBuf>,
    /// SMTP password environment variable.
    pub smtp_password_env: Option<String>,
    /// Sender, e.g. `jwtmon <jwtmon@example.com>`.
    pub from: Option<String>,
    /// Recipients.
    #[serde(default)]
    pub to: Vec<String>,
}

fn default_min_severity() -> Severity {
    Severity::High
}
fn default_per_minute() -> u32 {
    30
}
fn default_queue() -> usize {
    1000
}
fn default_retries() -> u32 {
    5
}
fn default_backoff() -> Duration {
    Duration::from_secs(1)
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_tls() -> SmtpTls {
    SmtpTls::Starttls
}

impl AlertConfig {
    /// Checks what parses but cannot work.
    pub fn validate(&self) -> Result<(), String> {
        let mut names = std::collections::HashSet::new();
        for s in &self.sinks {
            let at = format!("alerts.sinks `{}`", s.name);
            if s.name.is_empty() || !names.insert(&s.name) {
                return Err(format!("{at}: every sink needs its own non-empty name"));
            }
            if s.queue == 0 || s.queue > 1_000_000 {
                return Err(format!("{at}: queue must be between 1 and 1000000"));
            }
            match s.kind {
                SinkType::Slack | SinkType::Webhook => {
                    if s.url_file.is_none() && s.url_env.is_none() {
                        return Err(format!(
                            "{at}: set url_file or url_env (the webhook URL is a secret and is not written in the config)"
                        ));
                    }
                }
                SinkType::Email => {
                    if s.smtp_host.is_none() || s.from.is_none() || s.to.is_empty() {
                        return Err(format!("{at}: email needs smtp_host, from and to"));
                    }
                    if s.smtp_ca_file.is_some() && s.smtp_tls == SmtpTls::None {
                        return Err(format!(
                            "{at}: smtp_ca_file needs smtp_tls = \"starttls\" or \"tls\""
                        ));
                    }
                    if s.smtp_username.is_some()
                        && s.smtp_password_file.is_none()
                        && s.smtp_password_env.is_none()
                    {
                        return Err(format!(
                            "{at}: smtp_username needs smtp_password_file or smtp_password_env"
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}
