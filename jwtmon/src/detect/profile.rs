//! Per-subject habits: `unusual_hour`, `new_network_for_subject` and
//! `endpoint_unusual_for_subject`. A profile learns only from requests
//! whose token verified against a configured key (an unverified `sub` is
//! anyone's to claim), and judges only such requests, once the subject's
//! learning period is over. Each anomaly is reported once and then
//! learnt, so a subject that moves to a new network yields one finding,
//! not one per request. Profiles live in a bounded LRU and in memory only:
//! a restarted daemon learns again.

use std::{
    collections::{HashSet, VecDeque},
    hash::{DefaultHasher, Hasher},
    net::IpAddr,
    num::NonZeroUsize,
    path::{Path, PathBuf},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use crate::bounded::BoundedLru;
use ipnetwork::IpNetwork;
use serde_json::json;

use super::{Detector, config::ProfileConfig};
use crate::{
    analysis::Reporter,
    endpoint::hash_endpoint,
    finding::{Kind, Severity},
};

/// Countries remembered per subject.
const MAX_COUNTRIES: usize = 16;

/// A GeoIP database that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("GeoIP database {path}: {source}")]
pub struct GeoIpError {
    path: PathBuf,
    source: maxminddb::MaxMindDbError,
}

/// Country lookups in a GeoIP2/GeoLite2 (or compatible) MMDB.
pub struct GeoIp(maxminddb::Reader<Vec<u8>>);

impl GeoIp {
    /// Opens `path`.
    pub fn open(path: &Path) -> Result<Self, GeoIpError> {
        maxminddb::Reader::open_readfile(path)
            .map(Self)
            .map_err(|source| GeoIpError {
                path: path.into(),
                source,
            })
    }

    /// The ISO country code of `ip`, if the database has one.
    pub fn country(&self, ip: IpAddr) -> Option<String> {
        self.0
            .lookup(ip)
            .ok()?
            .decode_path(&maxminddb::path!["country", "iso_code"])
            .ok()
            .flatten()
    }
}

struct Profile {
    first: SystemTime,
    requests: u64,
    hours: [u32; 24],
    unusual_hour_quiet_until: SystemTime,
    /// Networks, least recently seen first.
    networks: VecDeque<IpNetwork>,
    countries: Vec<String>,
    endpoints: HashSet<u64>,
}

/// Profiles of at most `max_subjects` subjects.
pub struct Profiles {
    cfg: ProfileConfig,
    geoip: Option<GeoIp>,
    subjects: BoundedLru<String, Profile>,
}

fn hour_of(t: SystemTime) -> usize {
    (t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() / 3600 % 24) as usize
}

fn circular_distance(a: usize, b: usize) -> u32 {
    let d = a.abs_diff(b) as u32;
    d.min(24 - d)
}

impl Profile {
    fn new(t: SystemTime) -> Self {
        Self {
            first: t,
            requests: 0,
            hours: [0; 24],
            unusual_hour_quiet_until: UNIX_EPOCH,
            networks: VecDeque::new(),
            countries: Vec::new(),
            endpoints: HashSet::new(),
        }
    }

    fn learned(&self, cfg: &ProfileConfig, t: SystemTime) -> bool {
        self.requests >= cfg.learning_requests
            && t.duration_since(self.first).unwrap_or_default() >= cfg.learning_period
    }

    /// The usual hour nearest to `hour`, and how far it is.
    fn nearest_usual_hour(&self, cfg: &ProfileConfig, hour: usize) -> Option<(usize, u32)> {
        let total: u32 = self.hours.iter().sum();
        (0..24)
            .filter(|&h| f64::from(self.hours[h]) >= cfg.usual_hour_share * f64::from(total))
            .map(|h| (h, circular_distance(h, hour)))
            .min_by_key(|&(_, d)| d)
    }

    /// Remembers `net` as most recently seen; true if it was new.
    fn see_network(&mut self, net: IpNetwork, max: usize) -> bool {
        if let Some(i) = self.networks.iter().position(|n| *n == net) {
            self.networks.remove(i);
            self.networks.push_back(net);
            return false;
        }
        if self.networks.len() >= max.max(1) {
            self.networks.pop_front();
        }
        self.networks.push_back(net);
        true
    }
}

impl Profiles {
    /// Empty profiles; `geoip` adds country changes.
    pub fn new(cfg: &ProfileConfig, geoip: Option<GeoIp>) -> Self {
        let cap = NonZeroUsize::new(cfg.max_subjects.max(1)).unwrap_or(NonZeroUsize::MIN);
        Self {
            cfg: cfg.clone(),
            geoip,
            subjects: BoundedLru::new(cap),
        }
    }

    /// The network `ip` belongs to, at the configured prefix lengths.
    fn network(&self, ip: IpAddr) -> IpNetwork {
        super::window::network_of(ip, (self.cfg.ipv4_prefix, self.cfg.ipv6_prefix))
    }

    /// Subjects profiled.
    pub fn len(&self) -> usize {
        self.subjects.len()
    }

    /// No subject profiled yet.
    pub fn is_empty(&self) -> bool {
        self.subjects.is_empty()
    }
}

/// The registry entry: profiles when `detect.profile.enabled`, with the
/// GeoIP database opened now (a bad file is a setup error).
pub fn build(
    cfg: &super::config::DetectConfig,
) -> Result<Option<Box<dyn Detector>>, super::DetectError> {
    let p = &cfg.profile;
    if !p.enabled {
        return Ok(None);
    }
    let geoip = p.geoip_mmdb.as_deref().map(GeoIp::open).transpose()?;
    Ok(Some(Box::new(Profiles::new(p, geoip))))
}

impl Detector for Profiles {
    fn name(&self) -> &'static str {
        "profile"
    }

    fn tracked(&self) -> usize {
        self.len()
    }

    /// Judges one request against its subject's profile, then learns it.
    fn observe(&mut self, emit: &mut Reporter<'_>) {
        let (obs, facts) = (emit.observation(), emit.facts());
        if !self.cfg.enabled || !facts.verified {
            return;
        }
        let Some(subject) = &facts.subject else {
            return;
        };
        let t = obs.time;
        let net = self.network(obs.client_ip);
        let country = self.geoip.as_ref().and_then(|g| g.country(obs.client_ip));
        let mut h = DefaultHasher::new();
        hash_endpoint(&obs.request.method, &obs.request.path, &mut h);
        let ep_key = h.finish();
        let cfg = &self.cfg;
        if !self.subjects.contains(subject) {
            self.subjects.put(subject.clone(), Profile::new(t));
        }
        let Some(p) = self.subjects.get_mut(subject) else {
            return;
        };
        let judge = p.learned(cfg, t);
        let hour = hour_of(t);

        if judge
            && t >= p.unusual_hour_quiet_until
            && let Some((usual, distance)) = p.nearest_usual_hour(cfg, hour)
            && distance > cfg.hour_distance
        {
            p.unusual_hour_quiet_until = t + Duration::from_hours(1);
            emit.finding(
                Kind::UnusualHour,
                t,
                json!({ "hour_utc": hour, "nearest_usual_hour_utc": usual,
                        "hours_away": distance }),
            );
        }

        let new_country = country
            .as_ref()
            .filter(|c| !p.countries.contains(c))
            .cloned();
        if p.see_network(net, cfg.max_networks) && judge {
            let known = p.countries.clone();
            let changed = new_country.is_some() && !known.is_empty();
            let f = emit.finding(
                Kind::NewNetworkForSubject,
                t,
                json!({ "network": net.to_string(), "known_networks": p.networks.len() - 1,
                        "country": country, "known_countries": known,
                        "new_country": changed }),
            );
            if changed {
                f.severity = Severity::High;
            }
        }
        if let Some(c) = new_country {
            if p.countries.len() >= MAX_COUNTRIES {
                p.countries.remove(0);
            }
            p.countries.push(c);
        }

        // A full endpoint set stops judging (and learning) endpoints: a
        // subject that calls that many operations is not one whose next
        // new endpoint means anything.
        if p.endpoints.len() < cfg.max_endpoints && p.endpoints.insert(ep_key) && judge {
            emit.finding(
                Kind::EndpointUnusualForSubject,
                t,
                json!({ "known_endpoints": p.endpoints.len() - 1 }),
            );
        }

        p.requests += 1;
        p.hours[hour] = p.hours[hour].saturating_add(1);
    }
}
