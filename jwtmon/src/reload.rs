//! Configuration reload on SIGHUP (`systemctl reload jwtmon`): the config
//! file is read and validated again; the allowlist and `[decide]` (policy,
//! dry run, TTLs, caps) take effect without a restart. Blocks in the kernel
//! are never touched. A file that does not validate is refused, logged, and
//! the running configuration stays.

use std::path::PathBuf;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::{admin::PipelineRequest, config::Config, enforce::Maps, target::Target};

/// What a reload may change, and where it goes.
pub struct Reloader {
    /// The config file (`None`: the embedded defaults, nothing to re-read).
    pub path: Option<PathBuf>,
    /// The pinned maps' directory.
    pub pin_dir: PathBuf,
    /// The allowlist entries the configuration put in the kernel (removed
    /// again when a reload drops them; entries added with `jwtmon allow`
    /// stay).
    pub applied: Vec<Target>,
    /// The pipeline, which owns the decision engine.
    pub pipeline: Option<mpsc::Sender<PipelineRequest>>,
}

/// What one reload changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reloaded {
    /// Allowlist entries added.
    pub allowed: usize,
    /// Allowlist entries removed.
    pub unallowed: usize,
    /// Whether the decision engine took the new `[decide]`.
    pub decide: bool,
}

impl Reloader {
    /// Re-reads the file and applies it.
    pub async fn reload(&mut self) -> Result<Reloaded, String> {
        let Some(path) = &self.path else {
            return Err("no --config file: the embedded defaults have nothing to re-read".into());
        };
        let config = Config::load(path).map_err(|e| e.to_string())?;
        let mut done = Reloaded::default();
        let mut maps = Maps::open_pinned(&self.pin_dir).map_err(|e| e.to_string())?;
        let wanted = &config.allowlist.entries;
        for entry in wanted {
            if maps.ensure_allowed(entry).map_err(|e| e.to_string())? {
                done.allowed += 1;
            }
        }
        for old in self.applied.iter().filter(|t| !wanted.contains(t)) {
            match maps.unallow(old) {
                Ok(()) => done.unallowed += 1,
                Err(e) => warn!(entry = %old, error = %e, "reload: allowlist entry not removed"),
            }
        }
        self.applied.clone_from(wanted);
        if let Some(p) = &self.pipeline {
            let (tx, rx) = oneshot::channel();
            let sent = p
                .send(PipelineRequest::Reconfigure(
                    Box::new(config.decide.clone()),
                    tx,
                ))
                .await;
            done.decide = sent.is_ok() && rx.await.is_ok();
        }
        Ok(done)
    }

    /// Reloads on every SIGHUP until `shutdown`.
    pub async fn run(
        mut self,
        mut hup: Option<tokio::signal::unix::Signal>,
        shutdown: CancellationToken,
    ) {
        let Some(hup) = hup.as_mut() else {
            return;
        };
        loop {
            tokio::select! {
                got = hup.recv() => if got.is_none() { return },
                () = shutdown.cancelled() => return,
            }
            match self.reload().await {
                Ok(r) => info!(
                    allowlist_added = r.allowed,
                    allowlist_removed = r.unallowed,
                    decide = r.decide,
                    "SIGHUP: configuration reloaded"
                ),
                Err(e) => {
                    error!(error = %e, "SIGHUP: reload refused; the running configuration stays");
                }
            }
        }
    }
}
