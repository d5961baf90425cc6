//! Authentication failures: `login_bruteforce` (failed logins from one
//! address in a short window, or from one address or for one username in
//! a long one: low and slow), `auth_failure_burst` (failures on any
//! endpoint from one address) and `credential_stuffing` (one address, or
//! one network, failing for many usernames; one username failing from
//! many addresses). An address or network where as many distinct users
//! succeed as fail is a NAT, not a stuffing source: the success ratio is
//! weighed, not raw counts.

use std::{
    hash::{DefaultHasher, Hash, Hasher},
    net::IpAddr,
};

use ipnetwork::IpNetwork;
use serde_json::json;

use super::{
    Detector,
    config::AuthConfig,
    fields::{path_matches, username},
    window::{Window, network_of},
};
use crate::{analysis::Reporter, finding::Kind};

/// Distinct succeeding users remembered per address or network.
const OK_USERS: usize = 64;

/// Whether failures for `failing` usernames look like stuffing next to
/// the `ok` ones that logged in from the same place: most failing users
/// never got in (a user who mistyped and then logged in is no victim),
/// and fewer users got in than failed (an office NAT, a carrier).
fn stuffing_like(failing: &[&u64], ok: &[&u64]) -> bool {
    let unrecovered = failing.iter().filter(|u| !ok.contains(u)).count();
    unrecovered * 2 > failing.len() && ok.len() < failing.len()
}

/// The state of the authentication detectors.
pub struct Auth {
    cfg: AuthConfig,
    prefixes: (u8, u8),
    logins: Window<IpAddr>,
    failures: Window<IpAddr>,
    users_per_ip: Window<IpAddr, u64>,
    ips_per_user: Window<u64, IpAddr>,
    long_ip: Window<IpAddr>,
    long_user: Window<u64>,
    ok_users: Window<IpAddr, u64>,
    users_per_net: Window<IpNetwork, u64>,
    ok_users_per_net: Window<IpNetwork, u64>,
    addrs_per_net: Window<IpNetwork, IpAddr>,
}

/// A username's key (case-insensitive; kept in memory only).
pub fn hash(s: &str) -> u64 {
    let mut h = DefaultHasher::new();
    s.to_ascii_lowercase().hash(&mut h);
    h.finish()
}

impl Auth {
    /// Empty state; at most `keys` keys per window; networks at
    /// `prefixes` (IPv4, IPv6).
    pub fn new(cfg: &AuthConfig, keys: usize, prefixes: (u8, u8)) -> Self {
        let sw = cfg.stuffing_window;
        Self {
            prefixes,
            long_ip: Window::counting(keys, cfg.long_window, cfg.long_failures),
            long_user: Window::counting(keys, cfg.long_window, cfg.long_failures),
            ok_users: Window::distinct(keys, sw, OK_USERS),
            users_per_net: Window::distinct(keys, sw, cfg.stuffing_usernames_per_network),
            ok_users_per_net: Window::distinct(keys, sw, OK_USERS),
            addrs_per_net: Window::distinct(keys, sw, OK_USERS),
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
        let ip = obs.client_ip;
        let t = obs.time;
        let login = self.is_login(&obs.request.path);
        let user = login
            .then(|| username(&obs.request, &self.cfg.username_fields))
            .flatten();
        let net = network_of(ip, self.prefixes);
        if !self.cfg.failure_statuses.contains(&status) {
            if (200..300).contains(&status)
                && let Some(u) = &user
            {
                let uh = hash(u);
                self.ok_users.hit(ip, uh, t);
                self.ok_users_per_net.hit(net, uh, t);
            }
            return;
        }
        if login && let Some(c) = self.logins.hit(ip, (), t) {
            emit.finding(
                Kind::LoginBruteforce,
                c.first,
                json!({ "failures": c.count, "window_s": self.cfg.bruteforce_window.as_secs(),
                        "status": status }),
            );
        } else if login && let Some(c) = self.long_ip.hit(ip, (), t) {
            emit.finding(
                Kind::LoginBruteforce,
                c.first,
                json!({ "failures": c.count, "window_s": self.cfg.long_window.as_secs(),
                        "status": status, "shape": "low and slow, one address" }),
            );
        }
        if let Some(c) = self.failures.hit(ip, (), t) {
            emit.finding(
                Kind::AuthFailureBurst,
                c.first,
                json!({ "failures": c.count, "window_s": self.cfg.burst_window.as_secs() }),
            );
        }
        let Some(user) = user else { return };
        let uh = hash(&user);
        if let Some(c) = self.long_user.hit(uh, (), t) {
            emit.finding(
                Kind::LoginBruteforce,
                c.first,
                json!({ "failures": c.count, "window_s": self.cfg.long_window.as_secs(),
                        "shape": "low and slow, one username", "username": user }),
            );
        }
        if let Some(c) = self.users_per_ip.hit(ip, uh, t)
            && stuffing_like(
                &self.users_per_ip.values(&ip, t),
                &self.ok_users.values(&ip, t),
            )
        {
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
        if obs.proven() {
            self.addrs_per_net.hit(net, ip, t);
        }
        if let Some(c) = self.users_per_net.hit(net, uh, t)
            && stuffing_like(
                &self.users_per_net.values(&net, t),
                &self.ok_users_per_net.values(&net, t),
            )
        {
            // Named: addresses that failed for two usernames or more.
            let mut addrs: Vec<IpAddr> = self
                .addrs_per_net
                .values(&net, t)
                .into_iter()
                .copied()
                .collect();
            addrs.retain(|a| self.users_per_ip.values(a, t).len() >= 2);
            if addrs.len() < 2 {
                return;
            }
            let detail = json!({ "shape": "one network, many usernames", "usernames": c.count,
                                 "network": net.to_string(), "addresses": addrs.len(),
                                 "window_s": self.cfg.stuffing_window.as_secs() });
            for a in addrs {
                emit.finding_for(a, Kind::CredentialStuffing, c.first, detail.clone());
            }
        }
    }
}
