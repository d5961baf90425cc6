//! `[jwt]` configuration: trusted keys and expectations per issuer, and the
//! bounds of the analyser's state. Secrets are referenced by file or
//! environment variable, never written inline.

use std::{path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};

/// `[jwt]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct JwtConfig {
    /// Trusted issuers with their keys and expectations.
    pub issuers: Vec<IssuerConfig>,
    /// Distinct tokens whose verdicts are cached.
    pub verdict_cache_entries: usize,
    /// URL prefixes a `jku`/`x5u` header may point to.
    pub trusted_key_urls: Vec<String>,
    /// Extra weak-secret dictionary (one secret per line), any size.
    pub weak_secrets_file: Option<PathBuf>,
    /// Tokens waiting for the dictionary check; beyond it they are skipped
    /// and counted.
    pub weak_secret_queue: usize,
    /// Time spent on one token's dictionary check at most.
    #[serde(with = "humantime_serde")]
    pub weak_secret_budget: Duration,
    /// Revocation list file (reloaded when it changes).
    pub revocation_file: Option<PathBuf>,
    /// Window of the per-token behaviour checks (replay, agent change).
    #[serde(with = "humantime_serde")]
    pub replay_window: Duration,
    /// `jwt_replay_multi_ip` fires above this many client IPs per token.
    pub replay_max_ips: usize,
    /// Window in which a subject's claims must not grow.
    #[serde(with = "humantime_serde")]
    pub escalation_window: Duration,
    /// Claims that carry privileges.
    pub privilege_claims: Vec<String>,
    /// Tokens and subjects tracked by the behaviour checks.
    pub max_tracked_tokens: usize,
    /// Time per second that signature verification of new tokens may
    /// take (`0s`: no limit). Beyond it a new token gets the key-free
    /// checks only, is not cached, and is counted.
    #[serde(with = "humantime_serde")]
    pub verify_budget: Duration,
}

impl Default for JwtConfig {
    fn default() -> Self {
        Self {
            issuers: Vec::new(),
            verdict_cache_entries: 100_000,
            trusted_key_urls: Vec::new(),
            weak_secrets_file: None,
            weak_secret_queue: 1024,
            weak_secret_budget: Duration::from_secs(2),
            revocation_file: None,
            replay_window: Duration::from_mins(5),
            replay_max_ips: 3,
            escalation_window: Duration::from_hours(1),
            privilege_claims: ["role", "roles", "scope", "scp", "admin", "groups"]
                .map(String::from)
                .to_vec(),
            max_tracked_tokens: 100_000,
            verify_budget: Duration::from_millis(500),
        }
    }
}

/// `[[jwt.issuers]]`: one token issuer.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct IssuerConfig {
    /// The `iss` value; empty matches tokens of any (or no) issuer that no
    /// other entry claims.
    pub issuer: String,
    /// Algorithms this issuer signs with (empty: any its keys support).
    pub algorithms: Vec<String>,
    /// Accepted `aud` values (empty: not checked).
    pub audiences: Vec<String>,
    /// Clock skew allowed on exp/nbf/iat.
    #[serde(with = "humantime_serde")]
    pub leeway: Duration,
    /// Shortest acceptable exp − iat.
    #[serde(with = "humantime_serde")]
    pub min_lifetime: Duration,
    /// Longest acceptable exp − iat.
    #[serde(with = "humantime_serde")]
    pub max_lifetime: Duration,
    /// HMAC secret read from this file (trailing newline trimmed).
    pub hmac_secret_file: Option<PathBuf>,
    /// HMAC secret read from this environment variable.
    pub hmac_secret_env: Option<String>,
    /// PEM public keys (RSA, EC, Ed25519).
    pub public_key_files: Vec<PathBuf>,
    /// JWKS files.
    pub jwks_files: Vec<PathBuf>,
    /// JWKS URL, fetched at start, on `jwks_refresh` and on an unknown kid.
    pub jwks_url: Option<String>,
    /// Refresh interval of `jwks_url`.
    #[serde(with = "humantime_serde")]
    pub jwks_refresh: Duration,
    /// Least time between two fetches triggered by unknown kids.
    #[serde(with = "humantime_serde")]
    pub jwks_min_refetch: Duration,
}

impl Default for IssuerConfig {
    fn default() -> Self {
        Self {
            issuer: String::new(),
            algorithms: Vec::new(),
            audiences: Vec::new(),
            leeway: Duration::from_mins(1),
            min_lifetime: Duration::from_secs(30),
            max_lifetime: Duration::from_hours(24),
            hmac_secret_file: None,
            hmac_secret_env: None,
            public_key_files: Vec::new(),
            jwks_files: Vec::new(),
            jwks_url: None,
            jwks_refresh: Duration::from_mins(10),
            jwks_min_refetch: Duration::from_secs(30),
        }
    }
}
