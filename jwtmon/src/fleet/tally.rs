//! Shared counts for the detectors whose one-host view is wrong behind a
//! load balancer: failed logins per address (`login_bruteforce`), the
//! addresses failing for one username (`credential_stuffing`), the
//! addresses per token (`jwt_replay_multi_ip`) and the requests per token
//! against `detect.rate.ceiling_per_s` (`rate_spike_token`).
//!
//! The pipeline records events here without waiting ([`Tallies::record`]);
//! the fleet task takes them every `flush_interval`, adds them to Redis in
//! one Lua call (sorted sets of failures scored by time, hashes of address
//! → node), reads the fleet totals back and turns a total over its
//! threshold into a finding that names the nodes that saw the traffic.
//! Only answered requests count (a spoofed source cannot add to a count).
//! Usernames are stored as keyed hashes, never in clear.

use std::{
    collections::BTreeSet,
    net::IpAddr,
    num::NonZeroUsize,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use crate::bounded::BoundedLru;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::change::unix_ms;
use crate::{
    detect::{
        config::{AuthConfig, RateConfig},
        fields::{path_matches, username},
    },
    finding::{Finding, Kind},
    observe::Observation,
};

/// Events held for the next flush at most (a longer outage drops and counts).
const MAX_EVENTS: usize = 100_000;
/// (token, address) pairs already sent, so a token's requests cost Redis
/// one write per address and window, not one per request.
const SEEN_PAIRS: usize = 100_000;

/// What the fleet counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Counter {
    /// Failed logins from an address (a sorted set of events).
    LoginFailures,
    /// Addresses failing a login for one username (address → node).
    UsernameAddresses,
    /// Addresses using one token (address → node).
    TokenAddresses,
    /// Requests with one token in the current rate window (node → count;
    /// added once per flush, not once per request).
    TokenRequests,
}

impl Counter {
    fn tag(self) -> &'static str {
        match self {
            Counter::LoginFailures => "fail_ip",
            Counter::UsernameAddresses => "fail_user",
            Counter::TokenAddresses => "token_ips",
            Counter::TokenRequests => "token_rate",
        }
    }
}

/// One counted event.
#[derive(Clone, Debug)]
pub struct Event {
    /// Which count.
    pub counter: Counter,
    /// Its key (an address, a username hash, a token id).
    pub key: String,
    /// The client address.
    pub ip: IpAddr,
    /// When.
    pub at: SystemTime,
    /// The endpoint (`METHOD /path`), for the finding.
    pub endpoint: String,
    /// A token id, for replay findings.
    pub token_id: Option<String>,
    /// How many it stands for (requests aggregated between flushes).
    pub count: u64,
}

/// Thresholds, from `[detect.auth]` and `[jwt]`.
#[derive(Clone, Debug)]
pub struct Rules {
    login_paths: Vec<String>,
    failure_statuses: Vec<u16>,
    username_fields: Vec<String>,
    /// (more than this many, within)
    bruteforce: (usize, Duration),
    stuffing: (usize, Duration),
    replay: (usize, Duration),
    /// More than this many requests per token within a rate window
    /// (`ceiling_per_s` × window; 0: off).
    token_rate: (usize, Duration),
}

impl Rules {
    /// From the detectors' own settings (`[detect.auth]`, `[detect.rate]`
    /// and the replay limits of `[jwt]`), so a fleet total is judged as a
    /// local count would be.
    pub fn new(a: &AuthConfig, rate: &RateConfig, replay: (usize, Duration)) -> Self {
        Self {
            login_paths: a.login_paths.clone(),
            failure_statuses: a.failure_statuses.clone(),
            username_fields: a.username_fields.clone(),
            bruteforce: (a.bruteforce_failures, a.bruteforce_window),
            stuffing: (a.stuffing_ips_per_username, a.stuffing_window),
            replay,
            token_rate: (
                usize::try_from(
                    rate.ceiling_per_s
                        .saturating_mul(rate.window.as_secs().max(1)),
                )
                .unwrap_or(usize::MAX),
                rate.window,
            ),
        }
    }

    /// More than `n` within `window` for `counter`.
    pub fn limit(&self, counter: Counter) -> (usize, Duration) {
        match counter {
            Counter::LoginFailures => self.bruteforce,
            Counter::UsernameAddresses => self.stuffing,
            Counter::TokenAddresses => self.replay,
            Counter::TokenRequests => self.token_rate,
        }
    }
}

struct Inner {
    events: Vec<Event>,
    /// Requests per token since the last flush (index into `events`).
    token_requests: std::collections::HashMap<String, usize>,
    dropped: u64,
    seen: BoundedLru<(String, IpAddr), SystemTime>,
}

/// The pipeline's side: records events; cheap to clone.
#[derive(Clone)]
pub struct Tallies {
    node: String,
    inner: Arc<Mutex<Inner>>,
}

/// A keyed hash of a username (never stored in clear).
fn user_key(node_secret: &str, user: &str) -> String {
    let mut h = Sha256::new();
    h.update(node_secret.as_bytes());
    h.update(b"\0user:");
    h.update(user.to_lowercase().as_bytes());
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Tallies {
    /// Empty, for `node`.
    pub fn new(node: &str) -> Self {
        Self {
            node: node.to_string(),
            inner: Arc::new(Mutex::new(Inner {
                events: Vec::new(),
                token_requests: std::collections::HashMap::new(),
                dropped: 0,
                seen: BoundedLru::new(NonZeroUsize::new(SEEN_PAIRS).unwrap_or(NonZeroUsize::MIN)),
            })),
        }
    }

    /// Records what one observation adds to the fleet's counts.
    pub fn record(&self, obs: &Observation, rules: &Rules, salt: &str) {
        self.record_all(std::slice::from_ref(obs), rules, salt);
    }

    /// Records what a batch of observations adds (one lock for the
    /// batch). Only proven observations count. `salt` keys the username
    /// hash (the fleet's key prefix: the same on every node).
    pub fn record_all(&self, batch: &[Observation], rules: &Rules, salt: &str) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        for obs in batch.iter().filter(|o| o.proven()) {
            Self::add(&mut inner, obs, rules, salt);
        }
    }

    fn add(inner: &mut Inner, obs: &Observation, rules: &Rules, salt: &str) {
        // Formatted only for an event that is kept: most requests add none
        // (a token's pair was sent, or its rate count is aggregated).
        let endpoint = || format!("{} {}", obs.request.method, obs.request.path);
        let push = |inner: &mut Inner, counter, key: String, token_id: Option<String>| {
            if inner.events.len() >= MAX_EVENTS {
                inner.dropped += 1;
                return;
            }
            inner.events.push(Event {
                counter,
                key,
                ip: obs.client_ip,
                at: obs.time,
                endpoint: endpoint(),
                token_id,
                count: 1,
            });
        };
        let failed = obs
            .status
            .is_some_and(|s| rules.failure_statuses.contains(&s));
        if failed
            && rules
                .login_paths
                .iter()
                .any(|p| path_matches(p, &obs.request.path))
        {
            push(
                inner,
                Counter::LoginFailures,
                obs.client_ip.to_string(),
                None,
            );
            if let Some(user) = username(&obs.request, &rules.username_fields) {
                push(
                    inner,
                    Counter::UsernameAddresses,
                    user_key(salt, &user),
                    None,
                );
            }
        }
        if let Some(c) = &obs.request.credentials {
            let id = c.token_id();
            if rules.token_rate.0 > 0 {
                let bucket = unix_ms(obs.time)
                    / u64::try_from(rules.token_rate.1.as_millis().max(1)).unwrap_or(u64::MAX);
                let key = format!("{id}:{bucket}");
                match inner.token_requests.get(&key).copied() {
                    Some(i) if i < inner.events.len() => inner.events[i].count += 1,
                    _ => {
                        let at = inner.events.len();
                        push(inner, Counter::TokenRequests, key.clone(), Some(id.clone()));
                        if inner.events.len() > at {
                            inner.token_requests.insert(key, at);
                        }
                    }
                }
            }
            let pair = (id.clone(), obs.client_ip);
            let window = rules.replay.1;
            let fresh = inner
                .seen
                .get(&pair)
                .is_none_or(|t| obs.time.duration_since(*t).unwrap_or_default() >= window / 2);
            if fresh {
                inner.seen.put(pair, obs.time);
                push(inner, Counter::TokenAddresses, id.clone(), Some(id));
            }
        }
    }

    /// Takes what was recorded since the last call.
    pub fn take(&self) -> Vec<Event> {
        self.inner
            .lock()
            .map(|mut i| {
                i.token_requests.clear();
                std::mem::take(&mut i.events)
            })
            .unwrap_or_default()
    }

    /// Puts events back (the flush failed): the oldest are dropped beyond
    /// the bound.
    pub fn put_back(&self, mut events: Vec<Event>) {
        if let Ok(mut i) = self.inner.lock() {
            events.append(&mut i.events);
            let over = events.len().saturating_sub(MAX_EVENTS);
            i.dropped += over as u64;
            i.events = events.split_off(over);
        }
    }

    /// Events dropped by the bound.
    pub fn dropped(&self) -> u64 {
        self.inner.lock().map_or(0, |i| i.dropped)
    }

    /// This node.
    pub fn node(&self) -> &str {
        &self.node
    }
}

/// The Redis key of an event's count.
pub fn redis_key(prefix: &str, e: &Event) -> String {
    format!("{prefix}:tally:{}:{}", e.counter.tag(), e.key)
}

/// The member an event adds: sorted sets take `node|unique`, address
/// hashes the address (its value is the node), rate hashes the node (its
/// value is the count).
pub fn member(node: &str, e: &Event, seq: u64) -> String {
    match e.counter {
        Counter::LoginFailures => format!("{node}|{}|{seq}", unix_ms(e.at)),
        Counter::UsernameAddresses | Counter::TokenAddresses => e.ip.to_string(),
        Counter::TokenRequests => node.to_string(),
    }
}

/// The script's kind of an event's key, and the value it adds.
pub fn kind(e: &Event) -> (&'static str, u64) {
    match e.counter {
        Counter::LoginFailures => ("z", 0),
        Counter::UsernameAddresses | Counter::TokenAddresses => ("h", 0),
        Counter::TokenRequests => ("c", e.count),
    }
}

/// Adds events and returns each one's fleet count, and the nodes behind
/// it once the count is over its limit: ARGV = now_ms, then per key (in
/// KEYS order) kind (z: sorted set, h: address hash, c: counting hash),
/// score (for c: the count to add), window_ms, member, node, limit.
/// Sorted sets drop members older than the window; every key expires a
/// window after its last event (counting hashes two: a key per window).
pub const SCRIPT: &str = r"
local out = {}
local now = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  local b = 1 + (i - 1) * 6
  local kind, score, window, member, node, limit =
    ARGV[b+1], tonumber(ARGV[b+2]), tonumber(ARGV[b+3]), ARGV[b+4], ARGV[b+5], tonumber(ARGV[b+6])
  local count
  local nodes = {}
  if kind == 'z' then
    redis.call('ZADD', key, score, member)
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
    count = redis.call('ZCARD', key)
    if count > limit then nodes = redis.call('ZRANGE', key, 0, 63) end
  elseif kind == 'c' then
    redis.call('HINCRBY', key, member, score)
    count = 0
    for _, v in ipairs(redis.call('HVALS', key)) do count = count + tonumber(v) end
    if count > limit then nodes = redis.call('HKEYS', key) end
    window = window * 2
  else
    redis.call('HSET', key, member, node)
    count = redis.call('HLEN', key)
    if count > limit then nodes = redis.call('HVALS', key) end
  end
  redis.call('PEXPIRE', key, window)
  out[i] = {count, nodes}
end
return out
";

/// Judges the fleet counts of a flush: a count over its threshold becomes
/// a finding (once per key and window).
pub struct Judge {
    rules: Rules,
    fired: BoundedLru<String, SystemTime>,
}

impl Judge {
    /// With the detectors' thresholds.
    pub fn new(rules: Rules) -> Self {
        Self {
            rules,
            fired: BoundedLru::new(NonZeroUsize::new(10_000).unwrap_or(NonZeroUsize::MIN)),
        }
    }

    /// The thresholds.
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// The finding an event's fleet `count` (seen by `nodes`) makes, if any.
    pub fn judge(&mut self, e: &Event, count: usize, nodes: &[String]) -> Option<Finding> {
        let (limit, window) = self.rules.limit(e.counter);
        if count <= limit {
            return None;
        }
        let fired_key = format!("{}:{}", e.counter.tag(), e.key);
        if self
            .fired
            .get(&fired_key)
            .is_some_and(|t| e.at.duration_since(*t).unwrap_or_default() < window)
        {
            return None;
        }
        self.fired.put(fired_key, e.at);
        let nodes: BTreeSet<&str> = nodes
            .iter()
            .map(|n| n.split('|').next().unwrap_or(n))
            .collect();
        let (kind, detail) = match e.counter {
            Counter::LoginFailures => (
                Kind::LoginBruteforce,
                json!({ "failures": count, "window_s": window.as_secs() }),
            ),
            Counter::UsernameAddresses => (
                Kind::CredentialStuffing,
                json!({ "shape": "one username, many addresses", "addresses": count,
                        "window_s": window.as_secs() }),
            ),
            Counter::TokenAddresses => (
                Kind::JwtReplayMultiIp,
                json!({ "addresses": count, "window_s": window.as_secs() }),
            ),
            Counter::TokenRequests => (
                Kind::RateSpikeToken,
                json!({ "requests": count, "window_s": window.as_secs(), "ceiling": limit }),
            ),
        };
        let mut f = Finding::new(kind, e.at, e.ip, e.endpoint.clone());
        f.token_id.clone_from(&e.token_id);
        let mut detail = detail;
        detail["fleet"] = json!(true);
        detail["nodes"] = json!(nodes);
        f.detail = detail;
        // Every event behind the count was answered by a server.
        f.proven = true;
        Some(f)
    }
}
