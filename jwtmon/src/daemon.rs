//! The daemon, in three phases: prepare (the engine, the responder and the
//! kernel object; every file a config names is read here), attach (the
//! allowlist, then XDP on every interface) and serve (enforcer, pipeline,
//! admin API, metrics) until its shutdown future resolves; one
//! cancellation token stops every task, then it detaches (or leaves the
//! pinned links attached).

use std::{
    future::Future,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use aya::maps::{MapData, RingBuf};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{
    capture::{config::CaptureConfig, tls::TlsProbes},
    config::{Config, Emit},
    decide::PriorBlock,
    enforce::{
        Attachment, BlockView, Datapath, DatapathError, InterfaceSpec, Maps, MapsError, Role,
        enforcer::Enforcer,
    },
    engine::{Engine, EngineError, Use},
    event::Events,
    metrics::Metrics,
    pipeline::Links,
};

/// Errors that stop the daemon.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// No interface given and none found on the default route.
    #[error(
        "no interface to attach to: pass --iface IFACE or set daemon.interfaces (no default route found)"
    )]
    NoInterface,
    /// Datapath failure.
    #[error(transparent)]
    Datapath(#[from] DatapathError),
    /// Map failure.
    #[error(transparent)]
    Maps(#[from] MapsError),
    /// The analysing stages' files (keys, lists, GeoIP, OpenAPI).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// Incidents, alerts, export.
    #[error(transparent)]
    Respond(#[from] crate::respond::RespondError),
    /// `[fleet]` with `required = true` and Redis not usable.
    #[error(
        "{0} (fleet.required = true: not starting; set it false to start alone and join later)"
    )]
    Fleet(crate::fleet::LinkError),
    /// The pseudonymization key of stdout lines.
    #[error(transparent)]
    Privacy(#[from] crate::privacy::PrivacyError),
    /// `[capture.tls]` is on and its probes could not start.
    #[error("{0} (capture.tls.enabled = true; set it false to run without TLS capture)")]
    Tls(#[from] crate::capture::tls::TlsError),
}

/// Interfaces carrying an IPv4 or IPv6 default route.
pub fn default_route_interfaces() -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in crate::guard::default_routes() {
        if !out.contains(&r.iface) {
            out.push(r.iface);
        }
    }
    out
}

/// Everything that can fail on the configuration or the files it names,
/// done before anything is attached.
struct Prepared {
    config: Config,
    ifaces: Vec<InterfaceSpec>,
    engine: Engine,
    metrics: Arc<Metrics>,
    events: Events,
    responding: JoinHandle<()>,
    datapath: Datapath,
    usr1: Option<tokio::signal::unix::Signal>,
    hup: Option<tokio::signal::unix::Signal>,
    config_path: Option<PathBuf>,
    stdout_privacy: crate::privacy::Pseudonymizer,
}

/// Enforcement is live on every interface; nothing serves yet.
struct Attached {
    prepared: Prepared,
    maps: Maps,
    attached: Vec<Attachment>,
    capture: CaptureConfig,
    /// The sample ring, when an interface captures or TLS capture is on.
    ring: Option<RingBuf<MapData>>,
    /// The TLS probes, with `[capture.tls]` on.
    tls: Option<TlsProbes>,
}

/// Runs the daemon until `shutdown` resolves. `on_ready` is told what was
/// attached once enforcement is live and the API and metrics answer.
/// `config_path` is the file SIGHUP re-reads (`None`: embedded defaults).
pub async fn run(
    config: Config,
    config_path: Option<PathBuf>,
    shutdown: impl Future<Output = ()>,
    on_ready: impl FnOnce(&[Attachment]),
) -> Result<(), DaemonError> {
    let fleet = join_fleet(&config).await?;
    let prepared = prepare(config, config_path)?;
    let attached = attach(prepared)?;
    serve(attached, fleet, shutdown, on_ready).await;
    Ok(())
}

/// With `[fleet]`: connects to Redis before anything touches the kernel,
/// so a wrong URL or password is a clear error at start. Unreachable with
/// `fleet.required = false`: start alone, join when Redis answers.
async fn join_fleet(config: &Config) -> Result<crate::fleet::Start, DaemonError> {
    use crate::fleet::Start;
    let cfg = &config.fleet;
    if !cfg.enabled() {
        return Ok(Start::Off);
    }
    match crate::fleet::connect(cfg).await {
        Ok(c) => {
            info!(url = %cfg.redis_url, node = %cfg.node(), "fleet: connected to Redis");
            Ok(Start::Connected(Box::new(c)))
        }
        Err(e) if cfg.required => Err(DaemonError::Fleet(e)),
        Err(e) => {
            warn!(error = %e, "fleet: Redis not reachable at start (fleet.required = false): starting alone, joining when it answers");
            Ok(Start::Unreachable)
        }
    }
}

/// The interfaces to attach to: the configured ones, else the default
/// route's.
fn interfaces(config: &Config) -> Result<Vec<InterfaceSpec>, DaemonError> {
    if !config.daemon.interfaces.is_empty() {
        return Ok(config.daemon.interfaces.clone());
    }
    let ifaces: Vec<InterfaceSpec> = default_route_interfaces()
        .into_iter()
        .map(|name| InterfaceSpec {
            name,
            role: Role::Both,
        })
        .collect();
    if ifaces.is_empty() {
        return Err(DaemonError::NoInterface);
    }
    info!(interfaces = ?ifaces, "no interface configured, using the default route's");
    Ok(ifaces)
}

/// Phase 1: the engine (keys, revocation list, GeoIP, OpenAPI), the
/// responder (secrets, sinks) and the kernel object, so a bad file fails
/// before attaching.
fn prepare(config: Config, config_path: Option<PathBuf>) -> Result<Prepared, DaemonError> {
    use tokio::signal::unix::{SignalKind, signal};
    let ifaces = interfaces(&config)?;
    // Before anything reports ready: a SIGUSR1 or SIGHUP must never hit
    // the default (terminating) action.
    let usr1 = signal(SignalKind::user_defined1()).ok();
    let hup = signal(SignalKind::hangup()).ok();
    let engine = Engine::from_config(&config, Use::Live)?;
    let metrics = Arc::new(Metrics::new());
    let (events, responding) = crate::respond::start(config.respond_sections(), metrics.clone())?;
    let datapath = Datapath::load(&config.datapath, true)?;
    let stdout_privacy =
        crate::privacy::Pseudonymizer::for_stdout(&config.privacy, &config.daemon.state_dir)?;
    Ok(Prepared {
        config,
        ifaces,
        engine,
        metrics,
        events,
        responding,
        datapath,
        usr1,
        hup,
        config_path,
        stdout_privacy,
    })
}

/// Phase 2: the configured allowlist goes in, then XDP on every
/// interface; all of them or none.
fn attach(mut p: Prepared) -> Result<Attached, DaemonError> {
    let mut maps = p.datapath.take_maps()?;
    for entry in &p.config.allowlist.entries {
        if maps.ensure_allowed(entry)? {
            info!(%entry, "allowlisted from config");
        }
    }
    if p.config.allowlist.auto {
        crate::guard::apply(&mut maps, &crate::guard::protected(&p.config));
    }
    let keep = p.config.daemon.keep_attached;
    let mut attached = Vec::new();
    for iface in &p.ifaces {
        match p.datapath.attach(iface, p.config.datapath.xdp_mode, keep) {
            Ok(a) => {
                info!(iface = %a.iface, mode = %a.mode, pinned = a.pinned, "XDP attached");
                attached.push(a);
            }
            Err(e) => {
                // Leave nothing half-attached behind.
                p.datapath.shutdown(false);
                return Err(e.into());
            }
        }
    }
    let mut capture = p.config.capture.clone();
    let tls = if capture.tls.enabled {
        match TlsProbes::start(p.datapath.ebpf_mut(), &capture.tls, Path::new("/proc")) {
            Ok(t) => {
                info!(
                    libraries = t.libraries(),
                    "TLS capture on (OpenSSL uprobes)"
                );
                Some(t)
            }
            Err(e) => {
                p.datapath.shutdown(false);
                return Err(e.into());
            }
        }
    } else {
        None
    };
    let ring = if tls.is_some() || attached.iter().any(|a| a.role.captures()) {
        Some(p.datapath.take_events()?)
    } else {
        // Nobody would read the ring: tell any kept program not to fill it.
        capture.sample_rate = 0;
        None
    };
    maps.set_capture(&capture)?;
    Ok(Attached {
        prepared: p,
        maps,
        attached,
        capture,
        ring,
        tls,
    })
}

/// Phase 3: the enforcer, the pipeline, the admin API and the metrics
/// endpoint run until `shutdown`; one cancellation token stops them all,
/// then the responder flushes and the datapath detaches (or stays, with
/// `keep_attached`).
async fn serve(
    a: Attached,
    fleet_link: crate::fleet::Start,
    shutdown: impl Future<Output = ()>,
    on_ready: impl FnOnce(&[Attachment]),
) {
    let Attached {
        prepared: p,
        maps,
        attached,
        mut capture,
        ring,
        mut tls,
    } = a;
    let Prepared {
        config,
        mut engine,
        metrics,
        events,
        responding,
        mut datapath,
        usr1,
        hup,
        config_path,
        ..
    } = p;
    let keep = config.daemon.keep_attached;
    let capturing = ring.is_some();
    let (enforcer, orders, allow) = Enforcer::new(
        maps,
        config.datapath.reap_interval,
        config.daemon.emit != Emit::None,
    );
    let token = CancellationToken::new();
    let fleet = match fleet_link {
        crate::fleet::Start::Off => None,
        crate::fleet::Start::Connected(c) => start_fleet(&config, Some(*c), &metrics, &token),
        crate::fleet::Start::Unreachable => start_fleet(&config, None, &metrics, &token),
    };
    let enforcer = enforcer
        .with_outputs(Some(events.clone()), Some(metrics.clone()))
        .with_share(fleet.as_ref().map(|(f, _)| {
            let f = f.clone();
            let share: crate::enforce::enforcer::Share = Box::new(move |target, reason, ttl| {
                f.publish(crate::fleet::Op::Block, target, reason, Some(ttl));
            });
            share
        }));
    // Blocks of an earlier run stay in force (pinned maps); adopt them so
    // repeat offences keep growing and nothing is blocked twice.
    if let Ok(blocks) = enforcer.maps().list_blocks() {
        engine
            .decider
            .adopt(prior_blocks(&blocks), std::time::SystemTime::now());
    }
    if config.decide.dry_run {
        info!("decide.dry_run: findings are decided and reported, nothing is blocked or revoked");
    }
    let (requests_tx, requests_rx) = tokio::sync::mpsc::channel(64);
    let reloader = crate::reload::Reloader {
        path: config_path,
        pin_dir: config.datapath.pin_dir.clone(),
        applied: config.allowlist.entries.clone(),
        pipeline: capturing.then(|| requests_tx.clone()),
    };
    let reloading = tokio::spawn(reloader.run(hup, token.clone()));
    let services = start_services(
        &config,
        capturing.then_some(requests_tx),
        events.clone(),
        metrics.clone(),
        fleet.as_ref().map(|f| f.0.clone()),
        &token,
    )
    .await;
    // Ready: enforcing, and the API and metrics answer.
    on_ready(&attached);
    let enforcing = tokio::spawn(enforcer.run(token.clone()));
    let paused = Arc::new(AtomicBool::new(false));
    let pipeline = match ring {
        Some(ring) => {
            info!(ports = ?capture.ports, sample_rate = capture.sample_rate, "sampling HTTP");
            engine.orders = Some(orders);
            let links = Links {
                capture: capture.clone(),
                emit: config.daemon.emit,
                allow,
                paused: paused.clone(),
                events: Some(events.clone()),
                metrics: Some(metrics.clone()),
                requests: Some(requests_rx),
                stdout_privacy: p.stdout_privacy.clone(),
                fleet: fleet.map(|(f, findings)| crate::pipeline::FleetLink {
                    fleet: f,
                    findings,
                    rules: config.fleet_rules(),
                    salt: config.fleet.key_prefix.clone(),
                }),
                save_interval: config.detect.schema.save_interval,
            };
            Some(tokio::spawn(crate::pipeline::run(
                ring,
                engine,
                links,
                token.clone(),
            )))
        }
        None => None,
    };
    let pause_toggle = tokio::spawn(toggle_on_sigusr1(usr1, paused));

    watch_tls(&mut tls, &mut datapath, &capture, &metrics, shutdown).await;
    token.cancel();
    pause_toggle.abort();
    let _ = reloading.await;
    if let Some(p) = pipeline {
        let _ = p.await;
    }
    let maps = enforcing.await;
    for t in services {
        let _ = t.await;
    }
    // The last event handle goes: the responder flushes and ends.
    drop(events);
    if let Err(e) = responding.await {
        warn!(error = %e, "responder task failed");
    }
    match maps {
        Ok(mut maps) => {
            capture.sample_rate = 0;
            if let Err(e) = maps.set_capture(&capture) {
                warn!(error = %e, "could not switch sampling off");
            }
        }
        Err(e) => warn!(error = %e, "enforcer task failed"),
    }
    let detached = datapath.shutdown(keep);
    if keep {
        info!("stopping; XDP stays attached through the pinned links (--keep-attached)");
    } else {
        info!(interfaces = ?detached, "stopping; XDP detached");
    }
}

/// Waits for `shutdown`; meanwhile, with TLS capture on, probes the
/// libraries that appear (a rescan reads /proc: a few ms every
/// `rescan_interval`).
async fn watch_tls(
    tls: &mut Option<TlsProbes>,
    datapath: &mut Datapath,
    capture: &CaptureConfig,
    metrics: &Metrics,
    shutdown: impl Future<Output = ()>,
) {
    let Some(probes) = tls else {
        shutdown.await;
        return;
    };
    let publish = |p: &TlsProbes| {
        metrics
            .tls_libraries
            .set(i64::try_from(p.libraries()).unwrap_or(i64::MAX));
        Metrics::set_counter(
            &metrics
                .tls_events
                .get_or_create(&Metrics::label("event", "attach_failures")),
            p.stats.attach_failures.load(Ordering::Relaxed),
        );
    };
    publish(probes);
    let mut tick = tokio::time::interval(capture.tls.rescan_interval);
    tick.reset();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            _ = tick.tick() => {
                probes.rescan(datapath.ebpf_mut());
                publish(probes);
            }
        }
    }
}

/// The blocks this engine decided in an earlier run that are still live.
fn prior_blocks(blocks: &[BlockView]) -> impl Iterator<Item = PriorBlock> + '_ {
    blocks
        .iter()
        .filter(|b| b.origin == "decision" && !b.expired)
        .filter_map(|b| {
            Some(PriorBlock {
                target: b.target,
                remaining: std::time::Duration::from_secs(b.remaining_s?),
                ttl_s: b.ttl_s,
            })
        })
}

/// Starts the admin API and the metrics endpoint. Either failing to bind
/// Starts the fleet link (its own handle on the pinned maps); returns the
/// publishing handle and the fleet-wide findings for the pipeline.
fn start_fleet(
    config: &Config,
    first: Option<crate::fleet::Conn>,
    metrics: &Arc<Metrics>,
    token: &CancellationToken,
) -> Option<(
    crate::fleet::Fleet,
    tokio::sync::mpsc::Receiver<crate::finding::Finding>,
)> {
    let maps = match Maps::open_pinned(&config.datapath.pin_dir) {
        Ok(m) => m,
        Err(e) => {
            warn!(error = %e, "fleet: no handle on the pinned maps; the fleet link does not run");
            return None;
        }
    };
    let (fleet, rx) = crate::fleet::Fleet::new(&config.fleet);
    let (findings_tx, findings_rx) = tokio::sync::mpsc::channel(1024);
    let parts = crate::fleet::Parts {
        cfg: config.fleet.clone(),
        fleet: fleet.clone(),
        rx,
        maps,
        findings: findings_tx,
        rules: config.fleet_rules(),
        metrics: Some(metrics.clone()),
    };
    tokio::spawn(crate::fleet::run(parts, first, token.clone()));
    Some((fleet, findings_rx))
}

/// is reported and the daemon protects on without it.
async fn start_services(
    config: &Config,
    requests: Option<tokio::sync::mpsc::Sender<crate::admin::PipelineRequest>>,
    events: Events,
    metrics: Arc<Metrics>,
    fleet: Option<crate::fleet::Fleet>,
    shutdown: &CancellationToken,
) -> Vec<JoinHandle<()>> {
    let pin_dir = &config.datapath.pin_dir;
    let socket = (!config.admin.socket.as_os_str().is_empty())
        .then(|| config.state_path(&config.admin.socket));
    let parts = crate::admin::Admin {
        maps: Maps::open_pinned(pin_dir).ok(),
        pipeline: requests,
        events: Some(events),
        database: config
            .incidents
            .enabled
            .then(|| config.state_path(&config.incidents.database)),
        fleet,
    };
    let mut tasks = match crate::admin::bind(&config.admin, socket).await {
        Ok(listeners) => crate::admin::serve(listeners, parts, shutdown),
        Err(e) => {
            warn!(error = %e, "admin API not started; the CLI falls back to the pinned maps");
            Vec::new()
        }
    };
    if let Ok(Some(addr)) = config.metrics.address() {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => {
                info!(%addr, "metrics on http://{addr}/metrics");
                let maps = Maps::open_pinned(pin_dir).ok();
                let refresh: crate::metrics::Refresh = Box::new(move |m| {
                    if let Some(t) = maps.as_ref().and_then(|maps| maps.totals().ok()) {
                        m.set_kernel(|name| t.get(name));
                    }
                });
                let stop = shutdown.clone().cancelled_owned();
                tasks.push(tokio::spawn(async move {
                    if let Err(e) = crate::metrics::serve(l, metrics, refresh, stop).await {
                        warn!(error = %e, "metrics endpoint stopped");
                    }
                }));
            }
            Err(e) => warn!(%addr, error = %e, "metrics endpoint not started"),
        }
    }
    tasks
}

/// Flips `paused` on every SIGUSR1 (pauses reading HTTP samples).
async fn toggle_on_sigusr1(usr1: Option<tokio::signal::unix::Signal>, paused: Arc<AtomicBool>) {
    let Some(mut usr1) = usr1 else {
        return;
    };
    while usr1.recv().await.is_some() {
        let now = !paused.fetch_xor(true, Ordering::Relaxed);
        info!(
            paused = now,
            "SIGUSR1: sample reader {}",
            if now { "paused" } else { "resumed" }
        );
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn signal_shutdown() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers, run until killed.
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => info!("SIGTERM"),
        _ = int.recv() => info!("SIGINT"),
    }
}
