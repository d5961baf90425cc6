//! The TLS probes' life: the syscall tracepoints (accept, close, socket
//! I/O) go on once, the OpenSSL uprobes on every library file found, and a
//! rescan adds files that appeared since. A probe is on a file, not on a
//! process, so processes that start later are covered at once. A file
//! without the symbols (stripped, not OpenSSL) is counted and logged once,
//! and its probes that did go on come off again. Everything comes off when
//! the kernel object is dropped.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use aya::{
    Ebpf,
    programs::{
        ProgramError, TracePoint, UProbe,
        uprobe::{UProbeAttachLocation, UProbeAttachPoint, UProbeLinkId, UProbeScope},
    },
};
use jwtmon_common::{programs, tls_cookie};
use tracing::{info, warn};

use super::{
    config::{Library, TlsConfig},
    discover::{self, FileId, Target},
};

/// Why the TLS probes could not start.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A program is missing from the object or the verifier refused it.
    #[error("loading the TLS program {name}: {error}")]
    Load {
        /// Its name.
        name: &'static str,
        /// What failed.
        #[source]
        error: ProgramError,
    },
    /// A syscall tracepoint could not be attached.
    #[error(
        "attaching tracepoint syscalls:{name}: {error} (is tracefs mounted on /sys/kernel/tracing?)"
    )]
    Tracepoint {
        /// Its name.
        name: &'static str,
        /// What failed.
        #[source]
        error: ProgramError,
    },
    /// A configured library path does not exist.
    #[error("capture.tls.libraries: {path}: {error}")]
    Library {
        /// The path.
        path: PathBuf,
        /// What failed.
        #[source]
        error: std::io::Error,
    },
}

/// Counters of the probes, shared with the metrics.
#[derive(Debug, Default)]
pub struct TlsProbeStats {
    /// Library files with probes on.
    pub libraries: AtomicU64,
    /// Files where attaching failed (each counted once).
    pub attach_failures: AtomicU64,
}

/// The functions probed: symbol, attach cookie, required.
const CALLS: [(&str, u64, bool); 4] = [
    ("SSL_read", 0, true),
    ("SSL_write", tls_cookie::WRITE, true),
    ("SSL_read_ex", tls_cookie::EX, false),
    ("SSL_write_ex", tls_cookie::WRITE | tls_cookie::EX, false),
];

/// Syscall tracepoints and the program each runs.
const TRACEPOINTS: [(&str, &str); 8] = [
    ("sys_enter_accept4", programs::TLS_ACCEPT_ENTER),
    ("sys_enter_accept", programs::TLS_ACCEPT_ENTER),
    ("sys_exit_accept4", programs::TLS_ACCEPT_EXIT),
    ("sys_exit_accept", programs::TLS_ACCEPT_EXIT),
    ("sys_enter_close", programs::TLS_CLOSE),
    ("sys_enter_read", programs::TLS_SOCKET_IO),
    ("sys_enter_write", programs::TLS_SOCKET_IO),
    ("sys_enter_recvfrom", programs::TLS_SOCKET_IO),
];
/// Also socket I/O, attached where the kernel has it.
const MORE_IO: [&str; 1] = ["sys_enter_sendto"];

/// The probes of one daemon run.
pub struct TlsProbes {
    sources: Vec<Library>,
    proc_root: PathBuf,
    /// Files with probes on, and the links that hold them.
    attached: BTreeMap<FileId, Vec<(&'static str, UProbeLinkId)>>,
    /// Files that failed (not tried again).
    failed: BTreeSet<FileId>,
    /// Shared counters.
    pub stats: Arc<TlsProbeStats>,
}

/// The loaded object's program `name` as its type.
fn program<'a, P>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut P, TlsError>
where
    &'a mut P: TryFrom<&'a mut aya::programs::Program, Error = ProgramError>,
{
    ebpf.program_mut(name)
        .ok_or(TlsError::Load {
            name,
            error: ProgramError::NotLoaded,
        })?
        .try_into()
        .map_err(|error| TlsError::Load { name, error })
}

fn uprobe<'a>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut UProbe, TlsError> {
    program(ebpf, name)
}

fn tracepoint<'a>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut TracePoint, TlsError> {
    program(ebpf, name)
}

/// Mounts tracefs on /sys/kernel/tracing when nothing is there (tracepoints
/// are found through it).
fn mount_tracefs_if_needed() {
    let root = Path::new("/sys/kernel/tracing");
    if root.join("events").exists() || Path::new("/sys/kernel/debug/tracing/events").exists() {
        return;
    }
    let target = c"/sys/kernel/tracing";
    let fstype = c"tracefs";
    // SAFETY: valid NUL-terminated strings; no data argument.
    let rc = unsafe {
        libc::mount(
            fstype.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc == 0 {
        info!("mounted tracefs on /sys/kernel/tracing");
    }
}

impl TlsProbes {
    /// Loads the programs, attaches the tracepoints and probes every
    /// library found now.
    pub fn start(ebpf: &mut Ebpf, cfg: &TlsConfig, proc_root: &Path) -> Result<Self, TlsError> {
        for name in [
            programs::TLS_ENTER,
            programs::TLS_RETURN,
            programs::TLS_SET_FD,
        ] {
            uprobe(ebpf, name)?
                .load()
                .map_err(|error| TlsError::Load { name, error })?;
        }
        for name in [
            programs::TLS_ACCEPT_ENTER,
            programs::TLS_ACCEPT_EXIT,
            programs::TLS_CLOSE,
            programs::TLS_SOCKET_IO,
        ] {
            tracepoint(ebpf, name)?
                .load()
                .map_err(|error| TlsError::Load { name, error })?;
        }
        mount_tracefs_if_needed();
        for (event, prog) in TRACEPOINTS {
            tracepoint(ebpf, prog)?
                .attach("syscalls", event)
                .map_err(|error| TlsError::Tracepoint { name: event, error })?;
        }
        for event in MORE_IO {
            if let Err(error) = tracepoint(ebpf, programs::TLS_SOCKET_IO)?.attach("syscalls", event)
            {
                warn!(event, %error, "optional tracepoint not attached");
            }
        }
        let sources = cfg.sources();
        for s in &sources {
            if let Library::Path(p) = s {
                discover::file_id(p).map_err(|error| TlsError::Library {
                    path: p.clone(),
                    error,
                })?;
            }
        }
        let mut probes = Self {
            sources,
            proc_root: proc_root.to_path_buf(),
            attached: BTreeMap::new(),
            failed: BTreeSet::new(),
            stats: Arc::new(TlsProbeStats::default()),
        };
        probes.rescan(ebpf);
        if probes.attached.is_empty() {
            warn!(
                "capture.tls: no OpenSSL found yet; looking again every rescan_interval \
                 (a server started later is picked up then)"
            );
        }
        Ok(probes)
    }

    /// Probes the files that appeared since the last look.
    pub fn rescan(&mut self, ebpf: &mut Ebpf) {
        let mut targets: BTreeMap<FileId, Target> = BTreeMap::new();
        for s in &self.sources {
            match s {
                Library::Auto => targets.extend(discover::scan(&self.proc_root)),
                Library::Path(p) => {
                    if let Ok(id) = discover::file_id(p) {
                        targets.entry(id).or_insert(Target {
                            path: p.clone(),
                            shown: p.display().to_string(),
                        });
                    }
                }
            }
        }
        for (id, t) in targets {
            if self.attached.contains_key(&id) || self.failed.contains(&id) {
                continue;
            }
            match attach_file(ebpf, &t.path) {
                Ok(links) => {
                    info!(library = %t.shown, probes = links.len(), "TLS probes attached");
                    self.attached.insert(id, links);
                }
                Err(error) => {
                    warn!(library = %t.shown, %error, "TLS probes not attached (logged once)");
                    self.failed.insert(id);
                    self.stats.attach_failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        self.stats
            .libraries
            .store(self.attached.len() as u64, Ordering::Relaxed);
    }

    /// Library files with probes on.
    pub fn libraries(&self) -> usize {
        self.attached.len()
    }
}

/// Why one file could not be probed.
#[derive(Debug, thiserror::Error)]
#[error("{symbol}: {error}")]
pub struct AttachError {
    symbol: &'static str,
    #[source]
    error: ProgramError,
}

/// Puts entry and return probes on the four calls (the `_ex` forms where
/// the file has them) and on `SSL_set_fd`; all or nothing.
fn attach_file(
    ebpf: &mut Ebpf,
    path: &Path,
) -> Result<Vec<(&'static str, UProbeLinkId)>, AttachError> {
    let mut links = Vec::new();
    let attach = |ebpf: &mut Ebpf, prog: &'static str, symbol: &'static str, cookie| {
        let point = UProbeAttachPoint {
            location: UProbeAttachLocation::Symbol(symbol),
            cookie: Some(cookie),
        };
        uprobe(ebpf, prog)
            .map_err(|_| AttachError {
                symbol,
                error: ProgramError::NotLoaded,
            })?
            .attach(point, path, UProbeScope::AllProcesses)
            .map(|id| (prog, id))
            .map_err(|error| AttachError { symbol, error })
    };
    let mut result = Ok(());
    for (symbol, cookie, required) in CALLS {
        let pair =
            attach(ebpf, programs::TLS_ENTER, symbol, cookie).and_then(|enter| {
                match attach(ebpf, programs::TLS_RETURN, symbol, cookie) {
                    Ok(ret) => Ok([enter, ret]),
                    Err(e) => {
                        detach(ebpf, vec![enter]);
                        Err(e)
                    }
                }
            });
        match pair {
            Ok(pair) => links.extend(pair),
            Err(e) if required => {
                result = Err(e);
                break;
            }
            Err(_) => {}
        }
    }
    if result.is_ok()
        && let Ok(l) = attach(ebpf, programs::TLS_SET_FD, "SSL_set_fd", 0)
    {
        links.push(l);
    }
    match result {
        Ok(()) => Ok(links),
        Err(e) => {
            detach(ebpf, links);
            Err(e)
        }
    }
}

/// Takes probes off again.
fn detach(ebpf: &mut Ebpf, links: Vec<(&'static str, UProbeLinkId)>) {
    for (prog, id) in links {
        if let Ok(p) = uprobe(ebpf, prog) {
            let _ = p.detach(id);
        }
    }
}
