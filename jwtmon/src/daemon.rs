//! The daemon: loads and attaches the datapath, applies the configured
//! allowlist, keeps the maps tidy, and runs until its shutdown future
//! resolves; then detaches (or leaves the pinned links attached).

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use tracing::{info, warn};

use crate::{
    config::{Config, Emit, InterfaceSpec, Role},
    decide::Decider,
    detect::Detectors,
    enforce::{Attachment, Datapath, DatapathError, Maps, MapsError, enforcer::Enforcer},
    metrics::Metrics,
    pipeline::Stages,
    respond::Events,
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
    /// JWT keys or revocation list.
    #[error(transparent)]
    Jwt(#[from] crate::jwt::JwtError),
    /// The detectors' configuration (GeoIP database).
    #[error(transparent)]
    GeoIp(#[from] crate::detect::profile::GeoIpError),
    /// The sequence engine's OpenAPI file.
    #[error(transparent)]
    OpenApi(#[from] crate::sequence::endpoints::OpenApiError),
    /// Incidents, alerts, export.
    #[error(transparent)]
    Respond(#[from] crate::respond::RespondError),
}

/// Interfaces carrying an IPv4 or IPv6 default route.
pub fn default_route_interfaces() -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(text) = std::fs::read_to_string("/proc/net/route") {
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() > 3
                && f[1] == "00000000"
                && f[7] == "00000000"
                && !out.contains(&f[0].to_string())
            {
                out.push(f[0].to_string());
            }
        }
    }
    if let Ok(text) = std::fs::read_to_string("/proc/net/ipv6_route") {
        for line in text.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() == 10
                && f[0] == "00000000000000000000000000000000"
                && f[1] == "00"
                && f[9] != "lo"
                && !out.contains(&f[9].to_string())
            {
                out.push(f[9].to_string());
            }
        }
    }
    out
}

/// Runs the daemon until `shutdown` resolves. `on_ready` is told what was
/// attached once enforcement is live.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()>,
    on_ready: impl FnOnce(&[Attachment]),
) -> Result<(), DaemonError> {
    let mut ifaces = config.daemon.interfaces.clone();
    if ifaces.is_empty() {
        ifaces = default_route_interfaces()
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
    }
    let keep = config.daemon.keep_attached;
    // Before anything reports ready: a SIGUSR1 must never hit the default
    // (terminating) action.
    let usr1 = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1()).ok();
    // Keys and the revocation list first: a bad file fails before attaching.
    let analyzer = crate::jwt::JwtAnalyzer::new(&config.jwt)?;
    let detectors = Detectors::new(&config.detect)?;
    let sequences = crate::sequence::Sequencer::new(&config.sequence)?;
    // Secrets and sinks before attaching too: a missing webhook URL fails now.
    let metrics = Arc::new(Metrics::new());
    let (events, responding) = crate::respond::start(&config, metrics.clone())?;
    let mut datapath = Datapath::load(&config.datapath, true)?;
    let mut maps = datapath.take_maps()?;
    for entry in &config.allowlist.entries {
        if maps.ensure_allowed(entry)? {
            info!(%entry, "allowlisted from config");
        }
    }
    let mut attached = Vec::new();
    for iface in &ifaces {
        match datapath.attach(iface, config.datapath.xdp_mode, keep) {
            Ok(a) => {
                info!(iface = %a.iface, mode = %a.mode, pinned = a.pinned, "XDP attached");
                attached.push(a);
            }
            Err(e) => {
                // Leave nothing half-attached behind.
                datapath.shutdown(false);
                return Err(e.into());
            }
        }
    }

    let capturing = attached.iter().any(|a| a.role.captures());
    let mut capture_cfg = config.capture.clone();
    if !capturing {
        // Nobody would read the ring: tell any kept program not to fill it.
        capture_cfg.sample_rate = 0;
    }
    maps.set_capture(&capture_cfg)?;
    let (enforcer, orders, allow_rx) = Enforcer::new(
        maps,
        config.datapath.reap_interval,
        config.daemon.emit != Emit::None,
    );
    let enforcer = enforcer.with_outputs(Some(events.clone()), Some(metrics.clone()));
    let mut decider = Decider::new(&config.decide);
    // Blocks of an earlier run stay in force (pinned maps); adopt them so
    // repeat offences keep growing and nothing is blocked twice.
    if let Ok(blocks) = enforcer.maps().list_blocks() {
        decider.adopt(&blocks, std::time::SystemTime::now());
    }
    if config.decide.dry_run {
        info!("decide.dry_run: findings are decided and reported, nothing is blocked or revoked");
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (services_stop, services_stop_rx) = tokio::sync::watch::channel(false);
    let (commands_tx, commands_rx) = tokio::sync::mpsc::channel(64);
    let services = start_services(
        &config,
        capturing.then_some(commands_tx),
        events.clone(),
        metrics.clone(),
        services_stop_rx,
    )
    .await;
    // Ready: enforcing, and the API and metrics answer.
    on_ready(&attached);
    let (enforcer_stop, enforcer_stop_rx) = tokio::sync::watch::channel(false);
    let enforcing = tokio::spawn(enforcer.run(enforcer_stop_rx));
    let paused = Arc::new(AtomicBool::new(false));
    let pipeline = if capturing {
        let ring = datapath.take_events()?;
        info!(ports = ?capture_cfg.ports, sample_rate = capture_cfg.sample_rate, "sampling HTTP");
        let stages = Stages {
            analyzer,
            detectors,
            sequences,
            decider,
            orders: Some(orders),
            orders_dropped: 0,
        };
        Some(tokio::spawn(crate::pipeline::run(
            ring,
            capture_cfg.clone(),
            stages,
            allow_rx,
            config.daemon.emit,
            paused.clone(),
            stop_rx,
            crate::pipeline::Links {
                events: Some(events.clone()),
                metrics: Some(metrics.clone()),
                commands: Some(commands_rx),
            },
        )))
    } else {
        None
    };
    let pause_toggle = tokio::spawn(toggle_on_sigusr1(usr1, paused));

    shutdown.await;
    let _ = stop_tx.send(true);
    pause_toggle.abort();
    if let Some(p) = pipeline {
        let _ = p.await;
    }
    let _ = enforcer_stop.send(true);
    let mut maps = match enforcing.await {
        Ok(maps) => maps,
        Err(e) => {
            warn!(error = %e, "enforcer task failed");
            datapath.shutdown(keep);
            return Ok(());
        }
    };
    // The API and metrics go, then the responder flushes and ends.
    let _ = services_stop.send(true);
    for t in services {
        let _ = t.await;
    }
    drop(events);
    if let Err(e) = responding.await {
        warn!(error = %e, "responder task failed");
    }
    capture_cfg.sample_rate = 0;
    if let Err(e) = maps.set_capture(&capture_cfg) {
        warn!(error = %e, "could not switch sampling off");
    }
    drop(maps);
    let detached = datapath.shutdown(keep);
    if keep {
        info!("stopping; XDP stays attached through the pinned links (--keep-attached)");
    } else {
        info!(interfaces = ?detached, "stopping; XDP detached");
    }
    Ok(())
}

/// Starts the admin API and the metrics endpoint. Either failing to bind
/// is reported and the daemon protects on without it.
async fn start_services(
    config: &Config,
    commands: Option<tokio::sync::mpsc::Sender<crate::admin::Command>>,
    events: Events,
    metrics: Arc<Metrics>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let pin_dir = &config.datapath.pin_dir;
    let socket = (!config.admin.socket.as_os_str().is_empty())
        .then(|| config.state_path(&config.admin.socket));
    let parts = crate::admin::Admin {
        maps: Maps::open_pinned(pin_dir).ok(),
        pipeline: commands,
        events: Some(events),
        database: config
            .incidents
            .enabled
            .then(|| config.state_path(&config.incidents.database)),
    };
    let mut tasks = match crate::admin::start(&config.admin, socket, parts, stop.clone()).await {
        Ok(t) => t,
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
                let mut stop = stop;
                tasks.push(tokio::spawn(async move {
                    let wait = async move {
                        let _ = stop.wait_for(|s| *s).await;
                    };
                    if let Err(e) = crate::metrics::serve(l, metrics, maps, wait).await {
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
