//! Authentication failures: `login_bruteforce` (failed logins from one
//! address), `auth_failure_burst` (failures on any endpoint from one
//! address) and `credential_stuffing` (one address failing for many
//! usernames, or one username failing from many addresses).

use std::{
    hash::{DefaultHasher, Hash, Hasher},
    net::IpAddr,
};

use serde_json::json;

use super::{
    Detector,
    config::AuthConfig,
    fields::{path_matches, username},
    window::Window,
};
use crate::{analysis::Reporter, finding::Kind};

/// The state of the authentication detectors.
pub struct Auth {
    cfg: AuthConfig,
    logins: Window<IpAddr>,
    failures: Window<IpAddr>,
    users_per_ip: Window<IpAddr, u64>,
    ips_per_user: Window<u64, IpAddr>,
}

fn hash(s: &str) -> u64 {
    let mut h = DefaultHasher::new();
    s.to_ascii_lowercase().hash(&mut h);
    h.finish()
}

impl Auth {
    /// Empty state; at most `keys` keys per window.
    pub fn new(cfg: &AuthConfig, keys: usize) -> Self {
        Self {
            logins: Window::counting(keys, cfg.bruteforce_window, cfg.bruteforce_failures),
            failures: Window::counting(keys, cfg.burst_window, cfg.burst_failures),
            users_per_ip: Window::distinct(
                keys,
                cfg.stuffing_window,
                cfg.stuffing_usernames_per_ip,
            ),
            ips_per_user: Window::distinct(
                keys,
                cfg.stuffing_window,
                cfg.stuffing_ips_per_username,
            ),
            cfg: cfg.clone(),
        }
    }

    /// Whether `path` is a login endpoint.
    pub fn is_login(&self, path: &str) -> bool {
        self.cfg.login_paths.iter().any(|p| path_matches(p, path))
    }
}

impl Detector for Auth {
    fn name(&self) -> &'static str {
        "auth"
    }

    /// Looks at one answered request.
    fn observe(&mut self, emit: &mut Reporter<'_>) {
        let obs = emit.observation();
        let Some(status) = obs.status else { return };
        if !self.cfg.failure_statuses.contains(&status) {
            return;
        }
        let ip = obs.client_ip;
        let t = obs.time;
        let login = self.is_login(&obs.request.path);
        if login && let Some(c) = self.logins.hit(ip, (), t) {
            emit.finding(
                Kind::LoginBruteforce,
                c.first,
                json!({ "failures": c.count, "window_s": self.cfg.bruteforce_window.as_secs(),
                        "status": status }),
            );
        }
        if let Some(c) = self.failures.hit(ip, (), t) {
            emit.finding(
                Kind::AuthFailureBurst,
                c.first,
                json!({ "failures": c.count, "window_s": self.cfg.burst_window.as_secs() }),
            );
        }
        if !login {
            return;
        }
        let Some(user) = username(&obs.request, &self.cfg.username_fields) else {
            return;
        };
        let uh = hash(&user);
        if let Some(c) = self.users_per_ip.hit(ip, uh, t) {
            emit.finding(
                Kind::CredentialStuffing,
                c.first,
                json!({ "shape": "one address, many usernames", "usernames": c.count,
                        "window_s": self.cfg.stuffing_window.as_secs() }),
            );
        }
        if let Some(c) = self.ips_per_user.hit(uh, ip, t) {
            emit.finding(
                Kind::CredentialStuffing,
                c.first,
                json!({ "shape": "one username, many addresses", "username": user,
                        "addresses": c.count, "window_s": self.cfg.stuffing_window.as_secs() }),
            );
        }
    }
}
