//! `[detect]`: thresholds and windows of the behaviour detectors. Every
//! default is in the documented `config/jwtmon.toml`.

use std::{path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};

/// `[detect]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DetectConfig {
    /// Keys (addresses, tokens, subjects, usernames) each detector tracks
    /// at most; the least recently seen is forgotten first.
    pub max_tracked_keys: usize,
    /// The network a scan or stuffing is also counted per: IPv4 prefix
    /// length...
    pub ipv4_prefix: u8,
    /// ...and IPv6 prefix length.
    pub ipv6_prefix: u8,
    /// Authentication failures.
    pub auth: AuthConfig,
    /// Request-rate spikes.
    pub rate: RateConfig,
    /// Endpoint scans.
    pub scan: ScanConfig,
    /// Object-id enumeration (BOLA).
    pub objects: ObjectsConfig,
    /// API keys and other opaque credentials.
    pub api_keys: ApiKeysConfig,
    /// Injection payloads.
    pub injection: InjectionConfig,
    /// Per-subject profiles.
    pub profile: ProfileConfig,
    /// The API's schema: learned, or declared by an OpenAPI document.
    pub schema: SchemaConfig,
}

impl DetectConfig {
    /// Values no detector can work with.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=4).contains(&self.injection.paranoia) {
            return Err(format!(
                "detect.injection.paranoia = {}: 1 (default) to 4",
                self.injection.paranoia
            ));
        }
        let s = &self.schema;
        if s.promote_after == 0 || s.min_principals == 0 {
            return Err("detect.schema.promote_after and min_principals: at least 1".into());
        }
        if self.ipv4_prefix > 32 || self.ipv6_prefix > 128 {
            return Err("detect.ipv4_prefix: 0-32, detect.ipv6_prefix: 0-128".into());
        }
        Ok(())
    }
}

impl Default for DetectConfig {
    fn default() -> Self {
        Self {
            max_tracked_keys: 100_000,
            ipv4_prefix: 24,
            ipv6_prefix: 48,
            auth: AuthConfig::default(),
            rate: RateConfig::default(),
            scan: ScanConfig::default(),
            objects: ObjectsConfig::default(),
            api_keys: ApiKeysConfig::default(),
            injection: InjectionConfig::default(),
            profile: ProfileConfig::default(),
            schema: SchemaConfig::default(),
        }
    }
}

/// `[detect.auth]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Login endpoints: a pattern matches the whole path or its trailing
    /// segments (`/login` matches `/api/v1/login`); `*` matches within a
    /// segment.
    pub login_paths: Vec<String>,
    /// Response statuses that mean "authentication failed".
    pub failure_statuses: Vec<u16>,
    /// `login_bruteforce`: more than this many failed logins from one IP...
    pub bruteforce_failures: usize,
    /// ...within this window.
    #[serde(with = "humantime_serde")]
    pub bruteforce_window: Duration,
    /// `auth_failure_burst`: more than this many failures on any endpoint
    /// from one IP...
    pub burst_failures: usize,
    /// ...within this window.
    #[serde(with = "humantime_serde")]
    pub burst_window: Duration,
    /// `credential_stuffing`: one IP failing for more than this many
    /// distinct usernames...
    pub stuffing_usernames_per_ip: usize,
    /// ...or one username failing from more than this many addresses...
    pub stuffing_ips_per_username: usize,
    /// ...within this window.
    #[serde(with = "humantime_serde")]
    pub stuffing_window: Duration,
    /// JSON or form body fields that carry the username (Basic auth is
    /// always read).
    pub username_fields: Vec<String>,
    /// Low and slow: more than this many failed logins from one address,
    /// or for one username from any addresses...
    pub long_failures: usize,
    /// ...within this long window.
    #[serde(with = "humantime_serde")]
    pub long_window: Duration,
    /// `credential_stuffing` per network: addresses of one /ipv4_prefix
    /// (/ipv6_prefix) failing for more than this many usernames within
    /// `stuffing_window`; every participating address is named.
    pub stuffing_usernames_per_network: usize,
    /// Service-wide campaign (`login_campaign`): failed logins over all
    /// addresses within `campaign_window` above this floor...
    pub campaign_failures: usize,
    /// ...and above this many times their own baseline (the average of
    /// earlier windows)...
    pub campaign_factor: f64,
    /// ...for more than this many usernames...
    pub campaign_usernames: usize,
    /// ...from more than this many addresses.
    pub campaign_addresses: usize,
    /// The campaign window.
    #[serde(with = "humantime_serde")]
    pub campaign_window: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            login_paths: ["/login", "/auth", "/token", "/oauth/token", "/signin"]
                .map(String::from)
                .to_vec(),
            failure_statuses: vec![401, 403],
            bruteforce_failures: 10,
            bruteforce_window: Duration::from_mins(1),
            burst_failures: 30,
            burst_window: Duration::from_mins(1),
            stuffing_usernames_per_ip: 5,
            stuffing_ips_per_username: 10,
            stuffing_window: Duration::from_mins(10),
            username_fields: ["username", "user", "email", "login", "user_name"]
                .map(String::from)
                .to_vec(),
            long_failures: 50,
            long_window: Duration::from_hours(1),
            stuffing_usernames_per_network: 10,
            campaign_failures: 40,
            campaign_factor: 5.0,
            campaign_usernames: 20,
            campaign_addresses: 10,
            campaign_window: Duration::from_mins(10),
        }
    }
}

/// `[detect.rate]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RateConfig {
    /// Length of one counting window.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// A spike is a window with more than `factor` × the source's own
    /// moving average...
    pub factor: f64,
    /// ...and at least this many requests (a quiet client's first burst is
    /// not an incident)...
    pub min_requests: u64,
    /// ...once the average has this many windows behind it.
    pub learning_windows: u32,
    /// Requests per second above which a source is a spike whatever its
    /// history (0 = off).
    pub ceiling_per_s: u64,
}

impl Default for RateConfig {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(10),
            factor: 10.0,
            min_requests: 100,
            learning_windows: 6,
            ceiling_per_s: 200,
        }
    }
}

/// `[detect.scan]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ScanConfig {
    /// `endpoint_scan`: more than this many distinct paths answered with
    /// a `statuses` code from one IP...
    pub distinct_paths: usize,
    /// ...within this window.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// Statuses that mean "no such endpoint".
    pub statuses: Vec<u16>,
}

impl Default for ScanConfig {
    fn default() -> Self {
        Self {
            distinct_paths: 20,
            window: Duration::from_mins(1),
            statuses: vec![404, 405],
        }
    }
}

/// `[detect.objects]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ObjectsConfig {
    /// Look for object-id enumeration.
    pub enabled: bool,
    /// `object_enumeration`: more than this many distinct ids under one
    /// template that are not the principal's...
    pub distinct_ids: usize,
    /// ...within this window.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// Statuses that mean "exists, but not yours".
    pub forbidden_statuses: Vec<u16>,
}

impl Default for ObjectsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            distinct_ids: 20,
            window: Duration::from_mins(10),
            forbidden_statuses: vec![403],
        }
    }
}

/// `[detect.api_keys]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ApiKeysConfig {
    /// Treat opaque credentials like tokens.
    pub enabled: bool,
    /// Header names that carry a key (`X-API-Key` and `Api-Key` always do).
    pub headers: Vec<String>,
    /// Query parameter names that carry a key.
    pub query: Vec<String>,
    /// The Basic-auth user is a credential too.
    pub basic_user: bool,
    /// The window of the counts below.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// `api_key_shared`: one key used from more than this many networks
    /// (/ipv4_prefix, /ipv6_prefix) within `window`.
    pub max_networks: usize,
    /// `api_key_failures`: one key refused more than this often.
    pub max_failures: usize,
    /// `api_key_guessing`: one address trying more than this many
    /// distinct keys that fail (a network: twice as many).
    pub guessing_keys: usize,
    /// Statuses that mean "key refused".
    pub failure_statuses: Vec<u16>,
}

impl Default for ApiKeysConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            headers: vec!["x-api-key".into(), "api-key".into()],
            query: ["api_key", "apikey", "api-key"].map(String::from).to_vec(),
            basic_user: true,
            window: Duration::from_mins(10),
            max_networks: 5,
            max_failures: 20,
            guessing_keys: 5,
            failure_statuses: vec![401, 403],
        }
    }
}

/// `[detect.injection]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct InjectionConfig {
    /// Inspect path, query and the sampled body for injection payloads.
    pub enabled: bool,
    /// Bytes of each decoded value inspected at most.
    pub max_value_bytes: usize,
    /// 1 (default: few false positives) to 4: each level adds the
    /// fragment-level shapes CRS reports at that paranoia level.
    pub paranoia: u8,
}

impl Default for InjectionConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_value_bytes: 4096,
            paranoia: 1,
        }
    }
}

/// `[detect.profile]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ProfileConfig {
    /// Learn and judge per-subject habits.
    pub enabled: bool,
    /// A subject's first requests over this long only teach its profile.
    #[serde(with = "humantime_serde")]
    pub learning_period: Duration,
    /// ...and at least this many requests.
    pub learning_requests: u64,
    /// Subjects profiled (least recently seen forgotten first).
    pub max_subjects: usize,
    /// `unusual_hour`: an hour (UTC) counts as usual once it holds this
    /// share of the subject's requests...
    pub usual_hour_share: f64,
    /// ...and activity more than this many hours away from every usual
    /// hour is unusual.
    pub hour_distance: u32,
    /// Network prefix lengths that make a "network" (IPv4, IPv6).
    pub ipv4_prefix: u8,
    /// IPv6 prefix length.
    pub ipv6_prefix: u8,
    /// Networks remembered per subject.
    pub max_networks: usize,
    /// Endpoint classes remembered per subject.
    pub max_endpoints: usize,
    /// Optional GeoIP2/GeoLite2 country MMDB for country changes.
    pub geoip_mmdb: Option<PathBuf>,
}

impl Default for ProfileConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            learning_period: Duration::from_hours(168),
            learning_requests: 200,
            max_subjects: 20_000,
            usual_hour_share: 0.02,
            hour_distance: 3,
            ipv4_prefix: 24,
            ipv6_prefix: 48,
            max_networks: 32,
            max_endpoints: 256,
            geoip_mmdb: None,
        }
    }
}

/// `[detect.schema]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SchemaConfig {
    /// Judge requests against the API's schema.
    pub enabled: bool,
    /// Learn the schema from traffic (2xx answers that raised nothing);
    /// `false` keeps the model as loaded.
    pub learn: bool,
    /// A model learnt by `jwtmon schema learn` to start from. Without it
    /// the daemon starts from its own saved model, if any.
    pub learned: Option<PathBuf>,
    /// An OpenAPI 3 document (JSON or YAML) declaring the API: its
    /// violations are stronger evidence than the learned model's.
    pub openapi: Option<PathBuf>,
    /// Where the daemon saves what it learns (relative: under
    /// `daemon.state_dir`).
    pub state_file: PathBuf,
    /// How often the daemon saves it (and at shutdown).
    #[serde(with = "humantime_serde")]
    pub save_interval: Duration,
    /// An endpoint is judged once this many requests taught it...
    pub warmup_requests: u64,
    /// ...from at least this many principals (verified subjects, API
    /// keys, else addresses).
    pub min_principals: usize,
    /// A parameter's values are judged once it was learnt this often.
    pub min_parameter_samples: u64,
    /// A name (or a wider shape) is accepted only after this many
    /// distinct principals used it: one client cannot teach the model.
    pub promote_after: usize,
    /// Endpoints modelled at most.
    pub max_endpoints: usize,
    /// An endpoint with more distinct parameter names than this is
    /// marked unmodellable (and never judged).
    pub max_parameters_per_endpoint: usize,
    /// Parameters modelled at most, over all endpoints (about 600 bytes
    /// each at most).
    pub max_parameters: usize,
    /// Set by the engine (not configurable): where `save` writes.
    #[serde(skip)]
    pub save_to: Option<PathBuf>,
}

impl Default for SchemaConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            learn: true,
            learned: None,
            openapi: None,
            state_file: PathBuf::from("schema-model.json"),
            save_interval: Duration::from_mins(5),
            warmup_requests: 100,
            min_principals: 5,
            min_parameter_samples: 30,
            promote_after: 3,
            max_endpoints: 2_000,
            max_parameters_per_endpoint: 64,
            max_parameters: 20_000,
            save_to: None,
        }
    }
}
