//! What the analysers (`jwt`, `detect`, `sequence`) share: the facts the
//! JWT analyser learns of a request's token, and the [`Reporter`] that
//! builds findings in the context of one observation.

use std::time::SystemTime;

use serde_json::{Value, json};

use crate::{
    endpoint::endpoint,
    finding::{Finding, Kind},
    observe::Observation,
    parse::hex16,
};

/// A request's opaque credential.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKey {
    /// `api_key_id`: 16 hex characters of the key's SHA-256.
    pub id: String,
    /// Where it was: `header`, `query`, `basic`.
    pub source: &'static str,
}

/// What the detectors know of the request's token (from the JWT analyser).
#[derive(Clone, Debug, Default)]
pub struct TokenFacts {
    /// The token's `sub`.
    pub subject: Option<String>,
    /// The token verified against a configured key (profiles learn only
    /// from such tokens).
    pub verified: bool,
    /// The token's session claim (`sid`, else `jti`): sequence identity.
    pub session: Option<String>,
    /// The JWT analyser reported something about this request.
    pub flagged: bool,
    /// The request's opaque credential (API key, Basic user), by id.
    pub api_key: Option<ApiKey>,
}

/// What a detector's stateless part (`detect::Prepare`) made of one
/// observation, handed to the detector through [`Reporter::prepared`].
pub type Prepared = Box<dyn std::any::Any + Send + Sync>;

/// Builds findings in the context of one observation.
pub struct Reporter<'a> {
    obs: &'a Observation,
    facts: &'a TokenFacts,
    out: &'a mut Vec<Finding>,
    since: usize,
    /// The current detector's prepared result.
    pub(crate) prepared: Option<&'a Prepared>,
}

impl<'a> Reporter<'a> {
    /// Findings about `obs` go to `out`.
    pub fn new(obs: &'a Observation, facts: &'a TokenFacts, out: &'a mut Vec<Finding>) -> Self {
        let since = out.len();
        Self {
            obs,
            facts,
            out,
            since,
            prepared: None,
        }
    }

    /// What the current detector's `Prepare` made of this observation,
    /// if it ran (on a worker thread) and made a `T`.
    pub fn prepared<T: 'static>(&self) -> Option<&'a T> {
        self.prepared?.downcast_ref()
    }

    /// Whether anything was reported about this request before the
    /// caller's own findings: by the JWT analyser or an earlier detector.
    /// (What learns from traffic learns only from requests without.)
    pub fn raised_elsewhere(&self) -> bool {
        self.facts.flagged
            || self.out[self.since..]
                .iter()
                .any(|f| !f.kind.name().starts_with("schema_"))
    }

    /// The observation's time.
    pub fn time(&self) -> SystemTime {
        self.obs.time
    }

    /// The observation.
    pub fn observation(&self) -> &'a Observation {
        self.obs
    }

    /// What the JWT analyser learnt of its token.
    pub fn facts(&self) -> &'a TokenFacts {
        self.facts
    }

    /// A finding about another participant of what this request is part
    /// of (a campaign, a network's scan): the same, but for `ip`, without
    /// this request's subject and token. `ip` must have been seen sending
    /// answered requests (it is then as proven as this one's sender).
    pub fn finding_for(
        &mut self,
        ip: std::net::IpAddr,
        kind: Kind,
        first: SystemTime,
        detail: Value,
    ) -> &mut Finding {
        let f = self.finding(kind, first, detail);
        if f.src_ip != ip {
            f.src_ip = ip;
            f.subject = None;
            f.token_id = None;
        }
        f
    }

    /// Appends a finding at its kind's catalogue severity and returns it
    /// (to raise the severity, say); `first` is the first request that
    /// counted towards it (its detail gets `first_seen` and
    /// `time_to_detect_ms`).
    pub fn finding(&mut self, kind: Kind, first: SystemTime, detail: Value) -> &mut Finding {
        let mut detail = detail;
        if let Value::Object(m) = &mut detail {
            let ttd = self.obs.time.duration_since(first).unwrap_or_default();
            m.insert(
                "first_seen".into(),
                json!(humantime::format_rfc3339_millis(first).to_string()),
            );
            m.insert(
                "time_to_detect_ms".into(),
                json!(u64::try_from(ttd.as_millis()).unwrap_or(u64::MAX)),
            );
        }
        let obs = self.obs;
        let mut f = Finding::new(
            kind,
            obs.time,
            obs.client_ip,
            endpoint(&obs.request.method, &obs.request.path),
        );
        f.subject.clone_from(&self.facts.subject);
        f.token_id = obs
            .request
            .credentials
            .as_ref()
            .filter(|c| c.scheme.eq_ignore_ascii_case("bearer"))
            .map(|c| hex16(c.digest()));
        f.detail = detail;
        f.proven = obs.proven();
        f.transport = Some(obs.transport);
        self.out.push(f);
        self.out.last_mut().expect("just pushed")
    }
}
