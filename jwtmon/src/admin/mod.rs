//! The admin API: JSON over HTTP on a Unix socket (mode 0600; access is
//! who may open it), optionally also on loopback TCP with a bearer token.
//! Blocks and the allowlist go straight to the pinned maps; revocations,
//! statistics and sequences are asked of the pipeline; incidents come from
//! the register's database. Bad requests get a 4xx and a reason. Owns
//! `[admin]`; `client` is the CLI's side.

pub mod client;
mod routes;

use std::{
    net::SocketAddr,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use tokio_util::sync::CancellationToken;

use crate::{
    decide::config::DecideConfig, enforce::Maps, event::Events, secret::Secret, sequence::Report,
};

/// `[admin]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// The Unix socket (relative: under `daemon.state_dir`); empty for none.
    pub socket: PathBuf,
    /// Also listen on this loopback `IP:PORT` (bearer token required).
    pub listen: String,
    /// The bearer token file for TCP.
    pub token_file: Option<PathBuf>,
    /// The bearer token environment variable for TCP.
    pub token_env: Option<String>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            socket: PathBuf::from("admin.sock"),
            listen: String::new(),
            token_file: None,
            token_env: None,
        }
    }
}

impl AdminConfig {
    /// The TCP address, if any.
    pub fn tcp(&self) -> Result<Option<SocketAddr>, String> {
        if self.listen.is_empty() {
            return Ok(None);
        }
        let addr: SocketAddr = self
            .listen
            .parse()
            .map_err(|_| format!("admin.listen = `{}`: expected IP:PORT", self.listen))?;
        if !addr.ip().is_loopback() {
            return Err(format!(
                "admin.listen = `{}`: only loopback addresses",
                self.listen
            ));
        }
        Ok(Some(addr))
    }

    /// Checks what parses but cannot work.
    pub fn validate(&self) -> Result<(), String> {
        if self.tcp()?.is_some() && self.token_file.is_none() && self.token_env.is_none() {
            return Err("admin.listen needs admin.token_file or admin.token_env".into());
        }
        Ok(())
    }
}

/// What the API asks of the pipeline.
#[derive(Debug)]
pub enum PipelineRequest {
    /// Add a `token_id` revocation; replies `Ok` or why it failed.
    Revoke(String, oneshot::Sender<Result<(), String>>),
    /// Remove one; replies whether it existed.
    Unrevoke(String, oneshot::Sender<Result<bool, String>>),
    /// The `token_id` revocations.
    Revocations(oneshot::Sender<Vec<String>>),
    /// Pipeline counters.
    Stats(oneshot::Sender<serde_json::Value>),
    /// Top sequences (`top`, `min_n`).
    Sequences(usize, usize, oneshot::Sender<Report>),
    /// A reloaded `[decide]` section for the decision engine.
    Reconfigure(Box<DecideConfig>, oneshot::Sender<()>),
}

/// What the handlers share.
pub(crate) struct State {
    pub maps: Option<Mutex<Maps>>,
    pub pipeline: Option<mpsc::Sender<PipelineRequest>>,
    pub events: Option<Events>,
    pub database: Option<PathBuf>,
    pub token: Option<Secret>,
    pub fleet: Option<crate::fleet::Fleet>,
}

/// The admin API's parts.
pub struct Admin {
    /// The pinned maps (blocks, allowlist, counters).
    pub maps: Option<Maps>,
    /// The pipeline's command queue.
    pub pipeline: Option<mpsc::Sender<PipelineRequest>>,
    /// The responder (incident closes).
    pub events: Option<Events>,
    /// The incident database, when kept.
    pub database: Option<PathBuf>,
    /// Blocks and allows made here reach the fleet.
    pub fleet: Option<crate::fleet::Fleet>,
}

/// Why the API could not start.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The socket.
    #[error("admin socket {path}: {why}")]
    Socket {
        /// The path.
        path: String,
        /// What went wrong.
        why: String,
    },
    /// The TCP listener or token.
    #[error("admin.listen: {0}")]
    Tcp(String),
}

/// Binds the socket: a stale one is replaced, a live one (another daemon)
/// is an error.
fn bind_socket(path: &Path) -> Result<tokio::net::UnixListener, AdminError> {
    let err = |why: String| AdminError::Socket {
        path: path.display().to_string(),
        why,
    };
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(err("another jwtmon daemon answers on it".into()));
        }
        std::fs::remove_file(path)
            .map_err(|e| err(format!("cannot remove the stale socket: {e}")))?;
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
    }
    let l = tokio::net::UnixListener::bind(path).map_err(|e| err(e.to_string()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| err(e.to_string()))?;
    Ok(l)
}

/// The API's bound listeners and its bearer token, before serving.
pub struct Listeners {
    socket: Option<(tokio::net::UnixListener, PathBuf)>,
    tcp: Option<tokio::net::TcpListener>,
    token: Option<Secret>,
}

/// Binds the configured socket and TCP address (and loads the TCP bearer
/// token): every setup error surfaces here, before the daemon is ready.
pub async fn bind(cfg: &AdminConfig, socket: Option<PathBuf>) -> Result<Listeners, AdminError> {
    let tcp_addr = cfg.tcp().map_err(AdminError::Tcp)?;
    let token = if tcp_addr.is_some() {
        crate::secret::load(
            "admin token",
            cfg.token_file.as_deref(),
            cfg.token_env.as_deref(),
        )
        .map_err(|e| AdminError::Tcp(e.to_string()))?
    } else {
        None
    };
    let socket = match socket {
        Some(path) => Some((bind_socket(&path)?, path)),
        None => None,
    };
    let tcp = match tcp_addr {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| AdminError::Tcp(format!("{addr}: {e}")))?,
        ),
        None => None,
    };
    Ok(Listeners { socket, tcp, token })
}

/// Serves the API on `listeners` until `shutdown` is cancelled; returns
/// the serving tasks.
pub fn serve(
    listeners: Listeners,
    parts: Admin,
    shutdown: &CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    let state = Arc::new(State {
        maps: parts.maps.map(Mutex::new),
        pipeline: parts.pipeline,
        events: parts.events,
        database: parts.database,
        token: listeners.token,
        fleet: parts.fleet,
    });
    let mut tasks = Vec::new();
    if let Some((listener, path)) = listeners.socket {
        info!(socket = %path.display(), "admin API listening");
        let app = routes::router(state.clone(), false);
        let stop = shutdown.clone().cancelled_owned();
        tasks.push(tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await
            {
                warn!(error = %e, "admin API (socket) stopped");
            }
            let _ = std::fs::remove_file(&path);
        }));
    }
    if let Some(listener) = listeners.tcp {
        if let Ok(addr) = listener.local_addr() {
            info!(%addr, "admin API listening (bearer token)");
        }
        let app = routes::router(state, true);
        let stop = shutdown.clone().cancelled_owned();
        tasks.push(tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await
            {
                warn!(error = %e, "admin API (tcp) stopped");
            }
        }));
    }
    tasks
}
