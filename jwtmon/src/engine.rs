//! The engine: every analysing and deciding stage (JWT analysis,
//! behaviour detectors, API sequences, decisions), built in one place from
//! the configuration for the daemon, offline analysis and `check-config`
//! alike, so a bad file a config names fails the same way everywhere.

use serde_json::json;
use tracing::warn;

use crate::{
    analysis::Reporter,
    config::Config,
    decide::{Decider, Enforcement, config::DecideConfig},
    detect::{DetectError, Detectors, api_keys::identify, config::ApiKeysConfig},
    enforce::enforcer::Orders,
    finding::{Finding, Kind},
    jwt::{JwtAnalyzer, JwtError},
    observe::Observation,
    sequence::{Sequencer, endpoints::OpenApiError},
    workers::{Workers, WorkersError},
};

/// Why the engine cannot be built (each names the config key and file).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// JWT keys, the revocation list or the weak-secret list.
    #[error(transparent)]
    Jwt(#[from] JwtError),
    /// The detectors' files (GeoIP database).
    #[error(transparent)]
    Detect(#[from] DetectError),
    /// The sequence engine's OpenAPI file.
    #[error(transparent)]
    OpenApi(#[from] OpenApiError),
    /// `daemon.analysis_threads`.
    #[error(transparent)]
    Workers(#[from] WorkersError),
}

/// Where the engine runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Use {
    /// In the daemon: decisions are enforced (unless `decide.dry_run`).
    Live,
    /// Over a capture file: decisions say what the daemon would have done
    /// (dry run), against the configured allowlist.
    Offline,
}

/// The analysing and deciding stages, as the daemon and offline runs
/// drive them.
pub struct Engine {
    /// JWT analysis.
    pub analyzer: JwtAnalyzer,
    /// Behaviour detectors.
    pub detectors: Detectors,
    /// API sequence analytics and rules.
    pub sequences: Sequencer,
    /// Decision engine.
    pub decider: Decider,
    /// Where blocks go (`None`: decisions are reported, not enforced).
    pub orders: Option<Orders>,
    /// Block orders refused because the enforcer's queue was full.
    pub orders_dropped: u64,
    /// `decide.max_revoked_tokens`.
    pub max_revoked_tokens: usize,
    /// Automatic revocations refused because the list was full.
    pub revocations_refused: u64,
    /// Where requests carry opaque credentials.
    pub api_keys: ApiKeysConfig,
    /// The threads the detectors' stateless parts run on.
    pub workers: std::sync::Arc<Workers>,
}

impl Engine {
    /// Runs the token checks and the detectors on one observation.
    pub fn analyze(&mut self, obs: &Observation, findings: &mut Vec<Finding>) {
        self.analyze_prepared(obs, &[], findings);
    }

    /// [`Engine::analyze`], with what the detectors' preparers made of
    /// `obs` (see `detect::Prepare`).
    fn analyze_prepared(
        &mut self,
        obs: &Observation,
        prepared: &[Option<crate::detect::Prepared>],
        findings: &mut Vec<Finding>,
    ) {
        let before = findings.len();
        let mut facts = self.analyzer.analyze(obs, findings);
        facts.api_key = identify(&obs.request, &self.api_keys);
        if let Some(key) = &facts.api_key
            && self.analyzer.revocations.has_id(&key.id)
        {
            let detail = json!({ "source": key.source });
            Reporter::new(obs, &facts, findings)
                .finding(Kind::ApiKeyRevoked, obs.time, detail)
                .api_key_id = Some(key.id.clone());
        }
        facts.flagged = findings.len() > before;
        self.detectors
            .observe_prepared(obs, &facts, prepared, findings);
        self.sequences.observe(obs, &facts, findings);
    }

    /// Analyses a batch, decides every finding in `findings` (those made
    /// since the last batch included) and hands the enforcement on.
    pub fn process(&mut self, batch: &[Observation], findings: &mut Vec<Finding>) {
        self.analyze_batch(batch, findings);
        self.analyzer.poll(findings);
        self.decide(findings);
    }

    /// Analyses each observation of `batch` in order (their stateless
    /// checks on the worker threads); decides nothing.
    pub fn analyze_batch(&mut self, batch: &[Observation], findings: &mut Vec<Finding>) {
        let workers = self.workers.clone();
        let preparers = self.detectors.preparers().to_vec();
        workers.each(batch, &preparers, |obs, prepared| {
            self.analyze_prepared(obs, prepared, findings);
        });
    }

    /// Decides each finding (exactly once: callers pass undecided ones)
    /// and carries out or queues what the decisions ask for.
    pub fn decide(&mut self, findings: &mut [Finding]) {
        let mut todo = Vec::new();
        for f in findings.iter_mut() {
            self.decider.decide(f, &mut todo);
        }
        for e in todo {
            match e {
                Enforcement::Revoke { token_id } => {
                    if self.analyzer.revocations.len() >= self.max_revoked_tokens {
                        self.revocations_refused += 1;
                        if self.revocations_refused == 1 {
                            warn!(
                                cap = self.max_revoked_tokens,
                                "revocation list full (decide.max_revoked_tokens): automatic revocations stop"
                            );
                        }
                        continue;
                    }
                    if let Err(err) = self.analyzer.revoke_token_id(&token_id) {
                        warn!(token_id, error = %err, "revocation not saved");
                    }
                }
                block => {
                    if let Some(o) = &self.orders
                        && !o.send(block)
                    {
                        self.orders_dropped += 1;
                    }
                }
            }
        }
    }
}

/// `[detect]` for `usage`: live, the schema model is saved to its state
/// file under `daemon.state_dir` (offline runs save nothing unless the
/// caller set `schema.save_to`, as `jwtmon schema learn` does).
fn detect_config(config: &Config, usage: Use) -> crate::detect::config::DetectConfig {
    let mut d = config.detect.clone();
    if usage == Use::Live {
        d.schema.save_to = Some(config.state_path(&d.schema.state_file));
    }
    d
}

impl Engine {
    /// Saves what the detectors learnt (the schema model), logging the
    /// outcome; never fails the caller.
    pub fn save_learnt(&mut self) {
        match self.detectors.save() {
            Ok(files) => {
                for f in files {
                    tracing::debug!(file = %f.display(), "learnt state saved");
                }
            }
            Err(e) => warn!(error = %e, "learnt state not saved"),
        }
    }

    /// Builds every stage from `config`, loading the files it names.
    pub fn from_config(config: &Config, usage: Use) -> Result<Self, EngineError> {
        let decide = match usage {
            Use::Live => config.decide.clone(),
            Use::Offline => DecideConfig {
                dry_run: true,
                ..config.decide.clone()
            },
        };
        let mut decider = Decider::new(&decide);
        if usage == Use::Offline {
            decider.set_allowlist(config.allowlist.entries.clone());
        }
        // Offline analysis is not real time: every signature is verified.
        let jwt = match usage {
            Use::Live => config.jwt.clone(),
            Use::Offline => crate::jwt::config::JwtConfig {
                verify_budget: std::time::Duration::ZERO,
                ..config.jwt.clone()
            },
        };
        Ok(Self {
            analyzer: JwtAnalyzer::new(&jwt)?,
            detectors: Detectors::new(&detect_config(config, usage))?,
            sequences: Sequencer::new(&config.sequence)?,
            decider,
            orders: None,
            orders_dropped: 0,
            max_revoked_tokens: config.decide.max_revoked_tokens,
            revocations_refused: 0,
            api_keys: config.detect.api_keys.clone(),
            workers: std::sync::Arc::new(Workers::new(config.daemon.analysis_threads)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;

    /// A flood of replayed tokens (each one revoked by policy) keeps the
    /// revocation list within `max_revocations_per_minute` per minute and
    /// `max_revoked_tokens` in all.
    #[test]
    fn a_flood_of_revocations_stays_under_both_caps() {
        let mut config = Config::default();
        config.decide.max_revocations_per_minute = 50;
        config.decide.max_revoked_tokens = 120;
        let mut engine = Engine::from_config(&config, Use::Live).unwrap();
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        for minute in 0..10u64 {
            let mut batch: Vec<Finding> = (0..500u64)
                .map(|i| {
                    let t = start + Duration::from_secs(minute * 60 + i / 10);
                    let ip = std::net::IpAddr::from([198, 51, 100, (i % 250) as u8]);
                    let mut f = Finding::new(Kind::JwtReplayMultiIp, t, ip, "GET /a".into());
                    f.token_id = Some(format!("{:016x}", minute * 1000 + i));
                    f.proven = true;
                    f
                })
                .collect();
            engine.decide(&mut batch);
            let expected = ((minute + 1) * 50).min(120) as usize;
            assert_eq!(
                engine.analyzer.revocations.len(),
                expected,
                "minute {minute}"
            );
        }
        assert!(engine.revocations_refused > 0);
    }

    /// The injection inspection runs on worker threads; what comes out,
    /// and in which order, is the same as with one thread.
    #[test]
    fn findings_are_the_same_on_any_number_of_threads() {
        let batch: Vec<Observation> = (0..300u64)
            .map(|i| {
                let path = match i % 4 {
                    0 => format!("/search?q=1'%20OR%20'1'='{i}"),
                    1 => format!("/p/{i}?x=%3Cscript%3Ealert({i})%3C/script%3E"),
                    2 => format!("/files?name=../../etc/passwd&n={i}"),
                    _ => format!("/ok/{i}"),
                };
                let ip = format!("198.51.100.{}", i % 7 + 1);
                let mut o = crate::detect::tests::obs(&ip, "GET", "/", "", 200, i);
                let (p, q) = path.split_once('?').unwrap_or((&path, ""));
                o.request.path = p.to_string();
                o.request.query = (!q.is_empty()).then(|| q.to_string());
                o
            })
            .collect();
        let run = |threads: usize| {
            let mut config = Config::default();
            config.daemon.analysis_threads = threads;
            let mut engine = Engine::from_config(&config, Use::Offline).unwrap();
            assert_eq!(engine.workers.threads(), threads);
            let mut out = Vec::new();
            engine.process(&batch, &mut out);
            out.iter()
                .map(|f| (f.kind, f.src_ip, f.time, f.detail.to_string()))
                .collect::<Vec<_>>()
        };
        let one = run(1);
        assert!(
            one.iter().filter(|f| f.0 == Kind::InjectionSqli).count() >= 70,
            "the inspection ran: {one:?}"
        );
        assert_eq!(run(3), one);
    }
}
