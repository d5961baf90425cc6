//! Observe: turns parsed segments into request observations. Pairs each
//! request with its response (oldest unanswered request on the flow, checked
//! against the response's TCP ack), resolves the client behind trusted
//! proxies, and reports requests whose response never came. Bounded: an LRU
//! of flows and a cap on pending requests per flow.

pub mod client;

use std::{
    collections::{BTreeMap, VecDeque},
    net::{IpAddr, SocketAddr},
    num::NonZeroUsize,
    time::{Duration, SystemTime},
};

use crate::bounded::BoundedLru;
use serde_json::{Value, json};

use crate::{
    capture::{Direction, Segment, Transport, config::CaptureConfig},
    parse::{self, Request},
    target::Target,
};

/// Pending requests kept per connection; older ones are reported
/// unanswered when more arrive.
pub const MAX_PENDING_PER_FLOW: usize = 128;
/// What a waiting request costs in memory: its fixed part and the bytes
/// its fields hold.
/// Bytes an observation holds (its share of a byte budget).
pub fn weight(obs: &Observation) -> usize {
    size_of::<Observation>() + obs.request.held_bytes()
}

/// Sources remembered while looking for unconfigured proxies.
const SUSPECTS: usize = 10_000;

/// One HTTP request as jwtmon saw it, with its outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    /// When the request was seen.
    pub time: SystemTime,
    /// Packet source (the client, or a proxy).
    pub src: SocketAddr,
    /// Packet destination (the server).
    pub dst: SocketAddr,
    /// The client: `src`, or the forwarded-for address behind a trusted proxy.
    pub client_ip: IpAddr,
    /// `client_ip` is the sender, or the client a trusted proxy names;
    /// `false` for a proxy's request that names no client (the address is
    /// the proxy's, reported but never enforced).
    pub attributed: bool,
    /// The request.
    pub request: Request,
    /// Response status, once seen.
    pub status: Option<u16>,
    /// Request to response.
    pub latency: Option<Duration>,
    /// No response within the timeout (or before shutdown / eviction).
    pub unanswered: bool,
    /// Seen in TCP segments, or as TLS plaintext.
    pub transport: Transport,
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

impl Observation {
    /// The client is proven to be who `client_ip` says: the server
    /// answered the request. A spoofed source never completes a handshake,
    /// so its data segment gets no HTTP response (the server's kernel
    /// resets it); a response needs the real connection.
    pub fn proven(&self) -> bool {
        self.status.is_some() && self.attributed
    }

    /// The response refused the credentials (401 or 403): what the
    /// behaviour detectors count as a failed authentication.
    pub fn auth_failed(&self) -> bool {
        matches!(self.status, Some(401 | 403))
    }

    /// The JSON line form. Credentials appear only as scheme + token_id, and
    /// cookies only by name.
    pub fn to_json(&self) -> Value {
        let r = &self.request;
        let proxy = (self.client_ip != self.src.ip() || !self.attributed)
            .then(|| self.src.ip().to_string());
        let mut v = json!({
            "time": rfc3339(self.time),
            "src_ip": self.src.ip().to_string(),
            "src_port": self.src.port(),
            "dst_ip": self.dst.ip().to_string(),
            "dst_port": self.dst.port(),
            "client_ip": self.client_ip.to_string(),
            "proxy_ip": proxy,
            "method": r.method,
            "path": r.path,
            "query": r.query,
            "version": format!("HTTP/1.{}", r.version),
            "host": r.host,
            "user_agent": r.user_agent,
            "auth_scheme": r.credentials.as_ref().map(|c| c.scheme.clone()),
            "token_id": r.credentials.as_ref().map(parse::http::Credentials::token_id),
            "cookie_names": r.cookie_names(),
            "content_type": r.content_type,
            "content_length": r.content_length,
            "x_forwarded_for": r.forwarded_for,
            "body_bytes": r.body.len(),
            "truncated": r.truncated,
            "status": self.status,
            "latency_ms": self.latency.map(|d| d.as_secs_f64() * 1000.0),
            "unanswered": self.unanswered,
            "transport": self.transport,
        });
        if !self.attributed {
            v["client_attributed"] = json!(false);
        }
        v
    }
}

/// Counters of the observation stage.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ObserveStats {
    /// Requests parsed.
    pub requests: u64,
    /// Responses paired with a request.
    pub paired: u64,
    /// Responses with no request to pair with.
    pub unmatched_responses: u64,
    /// Requests reported without a response.
    pub unanswered: u64,
    /// Flows evicted to stay within `max_flows`.
    pub evicted_flows: u64,
    /// Waiting requests given up to stay within `max_pending_bytes`.
    pub pending_over_budget: u64,
    /// Requests from a suspected proxy (not attributed to anyone).
    pub suspected_proxy: u64,
    /// Malformed requests by reason.
    pub malformed: BTreeMap<&'static str, u64>,
}

struct Pending {
    obs: Observation,
    seq: u32,
}

#[derive(Default)]
struct Flow {
    pending: VecDeque<Pending>,
}

/// Client and server of a connection.
type FlowKey = (SocketAddr, SocketAddr);

/// The stateful pairing stage; the same for live capture and pcap files.
pub struct Observer {
    trusted: Vec<Target>,
    header: client::ForwardedHeader,
    suspects: client::SuspectedProxies,
    pending_bytes: usize,
    max_pending_bytes: usize,
    timeout: Duration,
    flows: BoundedLru<FlowKey, Flow>,
    /// What happened so far.
    pub stats: ObserveStats,
}

impl Observer {
    /// A new observer with the capture settings.
    pub fn new(cfg: &CaptureConfig) -> Self {
        Self {
            trusted: cfg.trusted_proxies.clone(),
            header: cfg.forwarded_header,
            suspects: client::SuspectedProxies::new(cfg.suspect_proxy_after, SUSPECTS),
            pending_bytes: 0,
            max_pending_bytes: cfg.max_pending_bytes,
            timeout: cfg.response_timeout,
            flows: BoundedLru::new(NonZeroUsize::new(cfg.max_flows.max(1)).expect("max(1)")),
            stats: ObserveStats::default(),
        }
    }

    /// Flows currently tracked.
    pub fn flows(&self) -> usize {
        self.flows.len()
    }

    /// Feeds one segment; completed observations are appended to `out`.
    pub fn push(&mut self, seg: Segment, out: &mut Vec<Observation>) {
        match seg.dir {
            Direction::Request => self.request(seg, out),
            Direction::Response => self.response(seg, out),
        }
    }

    fn request(&mut self, seg: Segment, out: &mut Vec<Observation>) {
        let complete = seg.complete();
        let key = (seg.src, seg.dst);
        for parsed in parse::parse_requests(&seg.data, complete) {
            let request = match parsed {
                Ok(r) => r,
                Err(why) => {
                    *self.stats.malformed.entry(why.as_str()).or_default() += 1;
                    continue;
                }
            };
            self.stats.requests += 1;
            let mut client = client::client_ip(seg.src.ip(), &request, &self.trusted, self.header);
            if client.attributed
                && client.ip == seg.src.ip()
                && self.suspects.suspect(client.ip, &request, self.header)
            {
                client.attributed = false;
                self.stats.suspected_proxy += 1;
            }
            let obs = Observation {
                time: seg.time,
                src: seg.src,
                dst: seg.dst,
                client_ip: client.ip,
                attributed: client.attributed,
                request,
                status: None,
                latency: None,
                unanswered: false,
                transport: seg.transport,
            };
            // Room for one: most connections wait for one answer at a time.
            if !self.flows.contains(&key)
                && let Some((_, evicted)) = self.flows.push(
                    key,
                    Flow {
                        pending: VecDeque::with_capacity(1),
                    },
                )
            {
                self.stats.evicted_flows += 1;
                for p in evicted.pending {
                    self.unanswered(p.obs, out);
                }
            }
            let flow = self.flows.get_mut(&key).expect("just inserted");
            let old = if flow.pending.len() >= MAX_PENDING_PER_FLOW {
                flow.pending.pop_front()
            } else {
                None
            };
            if let Some(old) = old {
                self.unanswered(old.obs, out);
            }
            self.pending_bytes += weight(&obs);
            let flow = self.flows.get_mut(&key).expect("present");
            flow.pending.push_back(Pending { obs, seq: seg.seq });
            self.within_budget(out);
        }
    }

    /// Bytes held by requests waiting for their responses.
    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// Over `capture.max_pending_bytes`, the least recently active flows
    /// give up their waiting requests (reported unanswered, so analysed but
    /// never enforced): a flood of unanswered requests cannot grow memory.
    fn within_budget(&mut self, out: &mut Vec<Observation>) {
        while self.pending_bytes > self.max_pending_bytes {
            let Some((_, flow)) = self.flows.pop_lru() else {
                self.pending_bytes = 0;
                return;
            };
            for p in flow.pending {
                self.stats.pending_over_budget += 1;
                self.unanswered(p.obs, out);
            }
        }
    }

    fn response(&mut self, seg: Segment, out: &mut Vec<Observation>) {
        let key = (seg.dst, seg.src);
        for resp in parse::parse_responses(&seg.data) {
            let Some(flow) = self.flows.get_mut(&key) else {
                self.stats.unmatched_responses += 1;
                continue;
            };
            // The server cannot answer a request it has not received: a
            // response acknowledging less than the oldest pending request's
            // first byte belongs to one we did not sample.
            let answerable = flow
                .pending
                .front()
                .is_some_and(|p| (seg.ack.wrapping_sub(p.seq) as i32) > 0);
            if !answerable {
                self.stats.unmatched_responses += 1;
                continue;
            }
            let p = flow.pending.pop_front().expect("checked");
            if flow.pending.is_empty() {
                // Nothing to wait for: the flow costs nothing until its
                // next request (a flood of one-request connections must
                // not leave a queue behind for each).
                self.flows.pop(&key);
            }
            self.pending_bytes = self.pending_bytes.saturating_sub(weight(&p.obs));
            let mut obs = p.obs;
            obs.status = Some(resp.status);
            obs.latency = seg.time.duration_since(obs.time).ok();
            self.stats.paired += 1;
            out.push(obs);
        }
    }

    fn unanswered(&mut self, mut obs: Observation, out: &mut Vec<Observation>) {
        self.pending_bytes = self.pending_bytes.saturating_sub(weight(&obs));
        self.stats.unanswered += 1;
        obs.unanswered = true;
        out.push(obs);
    }

    /// Reports requests older than the response timeout as unanswered and
    /// forgets empty flows.
    pub fn expire(&mut self, now: SystemTime, out: &mut Vec<Observation>) {
        let timeout = self.timeout;
        let mut expired = Vec::new();
        let mut empty = Vec::new();
        for (key, flow) in &mut self.flows {
            while flow
                .pending
                .front()
                .is_some_and(|p| now.duration_since(p.obs.time).unwrap_or_default() >= timeout)
            {
                expired.push(flow.pending.pop_front().expect("checked").obs);
            }
            if flow.pending.is_empty() {
                empty.push(*key);
            }
        }
        for key in empty {
            self.flows.pop(&key);
        }
        for obs in expired {
            self.unanswered(obs, out);
        }
    }

    /// Reports everything still pending as unanswered (end of input).
    pub fn flush(&mut self, out: &mut Vec<Observation>) {
        let mut all = Vec::new();
        while let Some((_, flow)) = self.flows.pop_lru() {
            all.extend(flow.pending.into_iter().map(|p| p.obs));
        }
        all.sort_by_key(|o| o.time);
        for obs in all {
            self.unanswered(obs, out);
        }
    }
}

#[cfg(test)]
mod tests;
