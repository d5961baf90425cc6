//! `[fleet]`: the Redis that the hosts of one API share, and how this host
//! takes part. Without the section, nothing of the fleet runs.

use std::{path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};

/// `[fleet]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FleetConfig {
    /// `redis://host:port/db` or `rediss://` (TLS). No password here.
    pub redis_url: String,
    /// A file holding the Redis password (or `user:password` for an ACL user).
    pub password_file: Option<PathBuf>,
    /// An environment variable holding it instead.
    pub password_env: Option<String>,
    /// This host's name in the fleet (default: the hostname).
    pub node_name: Option<String>,
    /// Prefix of every key and channel, so fleets can share one Redis.
    pub key_prefix: String,
    /// Connecting (and each reconnect attempt).
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// One command or pipeline.
    #[serde(with = "humantime_serde")]
    pub command_timeout: Duration,
    /// How often local counts are flushed and fleet totals read.
    #[serde(with = "humantime_serde")]
    pub flush_interval: Duration,
    /// Changes of this host kept for Redis while it is unreachable.
    pub max_queued: usize,
    /// Refuse to start when Redis cannot be reached (else start alone
    /// and join when it answers).
    pub required: bool,
}

impl Default for FleetConfig {
    fn default() -> Self {
        Self {
            redis_url: String::new(),
            password_file: None,
            password_env: None,
            node_name: None,
            key_prefix: "jwtmon".into(),
            connect_timeout: Duration::from_secs(2),
            command_timeout: Duration::from_secs(1),
            flush_interval: Duration::from_millis(100),
            max_queued: 10_000,
            required: false,
        }
    }
}

impl FleetConfig {
    /// Whether the section is in use.
    pub fn enabled(&self) -> bool {
        !self.redis_url.is_empty()
    }

    /// This node's name.
    pub fn node(&self) -> String {
        self.node_name.clone().unwrap_or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "jwtmon".into())
        })
    }

    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<(), String> {
        if !self.enabled() {
            return Ok(());
        }
        let scheme = self.redis_url.split("://").next().unwrap_or("");
        if !matches!(scheme, "redis" | "rediss") || !self.redis_url.contains("://") {
            return Err(format!(
                "fleet.redis_url = {:?}: must start with redis:// or rediss://",
                self.redis_url
            ));
        }
        if let Some((_, rest)) = self.redis_url.split_once("://")
            && rest
                .split('/')
                .next()
                .and_then(|auth| auth.rsplit_once('@'))
                .is_some_and(|(user, _)| user.contains(':'))
        {
            return Err(
                "fleet.redis_url: no password in the URL; use fleet.password_file or fleet.password_env".into(),
            );
        }
        if self.key_prefix.is_empty() || self.key_prefix.contains([' ', '*', '?', '[']) {
            return Err(format!(
                "fleet.key_prefix = {:?}: non-empty, no spaces or glob characters",
                self.key_prefix
            ));
        }
        if self.flush_interval < Duration::from_millis(10)
            || self.flush_interval > Duration::from_secs(1)
        {
            return Err("fleet.flush_interval: between 10ms and 1s".into());
        }
        if self
            .node_name
            .as_deref()
            .is_some_and(|n| n.is_empty() || n.len() > 24 || n.contains([' ', '@']))
        {
            return Err("fleet.node_name: 1 to 24 characters, no spaces or @".into());
        }
        Ok(())
    }
}
