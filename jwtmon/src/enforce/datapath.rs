//! Loading the embedded kernel object, pinning its maps, attaching the XDP
//! program to interfaces and letting it go again.
//!
//! Maps are pinned under the pin directory so blocks outlive the daemon. With
//! `keep_attached` the XDP link is pinned too (`links/xdp-IFACE`), so the
//! program keeps enforcing after the daemon exits or crashes; the next daemon
//! adopts that link by atomically swapping its freshly loaded program (which
//! shares the same pinned maps) into it, with no gap in enforcement.

use std::{
    io,
    path::{Path, PathBuf},
};

use aya::{
    Ebpf, EbpfLoader,
    maps::{MapData, MapInfo, RingBuf},
    programs::{
        ProgramError, SchedClassifier, TcAttachType, Xdp, XdpMode as AyaXdpMode,
        links::{FdLink, PinnedLink},
        xdp::XdpLink,
    },
};
use jwtmon_common::{
    AllowEntry, BlockEntry, Control, GlobalStats, SourceStats, maps as names, programs,
};
use tracing::{info, warn};

use super::{
    config::{DatapathConfig, InterfaceSpec, Role, XdpMode},
    maps::Maps,
};

/// The kernel object built by `build.rs`, embedded in the binary.
pub static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/jwtmon-ebpf"));

/// bpffs magic number (`statfs.f_type`).
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// Errors of loading and attaching.
#[derive(Debug, thiserror::Error)]
pub enum DatapathError {
    /// The pin directory is not on a bpffs.
    #[error(
        "{0} is not on a BPF filesystem; mount one with `mount -t bpf bpf /sys/fs/bpf` or set datapath.pin_dir"
    )]
    NotBpffs(PathBuf),
    /// Filesystem error on the pin directory.
    #[error("{what} {path}: {error}")]
    Io {
        /// What was attempted.
        what: &'static str,
        /// Where.
        path: PathBuf,
        /// The OS error.
        error: io::Error,
    },
    /// A pinned map from an older, incompatible build.
    #[error(
        "pinned map {path} has key/value sizes {found:?}, this build needs {expected:?}; run `jwtmon reset` to recreate the maps (this clears blocks)"
    )]
    IncompatiblePin {
        /// The pin.
        path: PathBuf,
        /// (key, value) sizes found.
        found: (u32, u32),
        /// (key, value) sizes needed.
        expected: (u32, u32),
    },
    /// Loading the object or program failed.
    #[error("loading the kernel object: {0}")]
    Load(#[from] aya::EbpfError),
    /// A program-level failure (verifier, attach).
    #[error("{what}: {error}")]
    Program {
        /// What was attempted.
        what: String,
        /// aya's error.
        error: ProgramError,
    },
    /// Missing privileges.
    #[error("permission denied: loading eBPF programs needs root (or CAP_BPF + CAP_NET_ADMIN)")]
    Permission,
    /// Map access failure.
    #[error(transparent)]
    Maps(#[from] crate::enforce::maps::MapsError),
    /// Other aya pin/link errors.
    #[error("{0}")]
    Link(String),
}

/// How a program ended up attached to an interface.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AttachMode {
    /// Driver (native) XDP.
    Native,
    /// Generic (skb) XDP.
    Skb,
    /// Took over the pinned link a previous daemon left attached.
    Adopted,
}

impl std::fmt::Display for AttachMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AttachMode::Native => "native",
            AttachMode::Skb => "skb",
            AttachMode::Adopted => "adopted pinned link",
        })
    }
}

/// What `attach` did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Attachment {
    /// Interface name.
    pub iface: String,
    /// What jwtmon does there.
    #[serde(serialize_with = "serialize_display")]
    pub role: Role,
    /// Mode.
    pub mode: AttachMode,
    /// Whether the link is pinned (survives the daemon).
    pub pinned: bool,
}

#[expect(
    clippy::trivially_copy_pass_by_ref,
    reason = "the signature serde's `serialize_with` calls"
)]
fn serialize_display<S: serde::Serializer>(v: &Role, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// The XDP program serving a role.
fn xdp_program_name(role: Role) -> &'static str {
    match role {
        Role::Both => programs::XDP_INGRESS,
        Role::Enforce => programs::XDP_ENFORCE,
        Role::Capture => programs::XDP_CAPTURE,
    }
}

/// A loaded kernel object and its attachments.
pub struct Datapath {
    ebpf: Ebpf,
    pin_dir: Option<PathBuf>,
    attachments: Vec<Attachment>,
    pinned_links: Vec<PinnedLink>,
}

/// The (key, value) sizes a map must have for this build.
fn expected_sizes(name: &str) -> (u32, u32) {
    use std::mem::size_of;
    let lpm_key = (size_of::<u32>() + size_of::<jwtmon_common::Addr>()) as u32;
    let addr = size_of::<jwtmon_common::Addr>() as u32;
    match name {
        names::ALLOW_CIDR => (lpm_key, size_of::<AllowEntry>() as u32),
        names::BLOCK_IP => (addr, size_of::<BlockEntry>() as u32),
        names::BLOCK_CIDR => (lpm_key, size_of::<BlockEntry>() as u32),
        names::SRC_STATS => (addr, size_of::<SourceStats>() as u32),
        names::SRC_STATS4 => (4, size_of::<SourceStats>() as u32),
        names::CONTROL => (4, size_of::<Control>() as u32),
        _ => (4, size_of::<GlobalStats>() as u32),
    }
}

/// The conventional bpffs mount point.
const BPFFS_ROOT: &str = "/sys/fs/bpf";

fn is_bpffs(dir: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: zeroed statfs is a valid out-parameter; `c` is NUL-terminated.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    (unsafe { libc::statfs(c.as_ptr(), &raw mut st) }) == 0 && st.f_type as i64 == BPF_FS_MAGIC
}

/// Mounts bpffs on /sys/fs/bpf when the pin dir lives below it and nothing
/// is mounted there yet (as systemd does on most distributions).
fn mount_bpffs_if_needed(dir: &Path) -> Result<(), DatapathError> {
    let root = Path::new(BPFFS_ROOT);
    if !dir.starts_with(root) || is_bpffs(root) {
        return Ok(());
    }
    let target = std::ffi::CString::new(BPFFS_ROOT).expect("no NUL");
    let fstype = std::ffi::CString::new("bpf").expect("no NUL");
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
    if rc != 0 {
        return Err(DatapathError::Io {
            what: "mounting bpffs on",
            path: root.to_path_buf(),
            error: io::Error::last_os_error(),
        });
    }
    info!(path = BPFFS_ROOT, "mounted the BPF filesystem");
    Ok(())
}

/// Fails unless `dir` is on a bpffs (mounting /sys/fs/bpf if needed),
/// creating it when missing.
pub fn prepare_pin_dir(dir: &Path) -> Result<(), DatapathError> {
    mount_bpffs_if_needed(dir)?;
    std::fs::create_dir_all(dir).map_err(|error| DatapathError::Io {
        what: "creating pin directory",
        path: dir.to_path_buf(),
        error,
    })?;
    if !is_bpffs(dir) {
        return Err(DatapathError::NotBpffs(dir.to_path_buf()));
    }
    Ok(())
}

/// Path of the pinned XDP link of an interface.
pub fn link_pin_path(pin_dir: &Path, iface: &str) -> PathBuf {
    pin_dir.join("links").join(format!("xdp-{iface}"))
}

impl Datapath {
    /// Loads the embedded object with map sizes from `cfg`. With `pin`, maps
    /// are pinned under `cfg.pin_dir` (reused when already there).
    pub fn load(cfg: &DatapathConfig, pin: bool) -> Result<Self, DatapathError> {
        let pin_dir = pin.then(|| cfg.pin_dir.clone());
        let mut loader = EbpfLoader::new();
        loader
            .map_max_entries(names::BLOCK_IP, cfg.max_blocked_ips)
            .map_max_entries(names::BLOCK_CIDR, cfg.max_blocked_cidrs)
            .map_max_entries(names::ALLOW_CIDR, cfg.max_allowlist)
            .map_max_entries(names::SRC_STATS, cfg.tracked_sources())
            .map_max_entries(names::SRC_STATS4, cfg.tracked_sources())
            .map_max_entries(names::EVENTS, cfg.ring_buffer_bytes);
        let pin_paths: Vec<(&str, PathBuf)>;
        if let Some(dir) = &pin_dir {
            prepare_pin_dir(dir)?;
            check_pinned_maps(dir, cfg)?;
            pin_paths = names::ALL.iter().map(|n| (*n, dir.join(n))).collect();
            for (name, path) in &pin_paths {
                loader.map_pin_path(name, path.as_path());
            }
        }
        let mut ebpf = loader.load(OBJECT).map_err(|e| match &e {
            aya::EbpfError::MapError(aya::maps::MapError::CreateError { io_error, .. })
                if io_error.kind() == io::ErrorKind::PermissionDenied =>
            {
                DatapathError::Permission
            }
            _ => DatapathError::Load(e),
        })?;
        for name in [
            programs::XDP_INGRESS,
            programs::XDP_ENFORCE,
            programs::XDP_CAPTURE,
        ] {
            xdp_program(&mut ebpf, name)?
                .load()
                .map_err(|error| DatapathError::Program {
                    what: format!("loading XDP program {name} (verifier)"),
                    error,
                })?;
        }
        tc_program(&mut ebpf)?
            .load()
            .map_err(|error| DatapathError::Program {
                what: format!("loading TC program {} (verifier)", programs::TC_EGRESS),
                error,
            })?;
        Ok(Self {
            ebpf,
            pin_dir,
            attachments: Vec::new(),
            pinned_links: Vec::new(),
        })
    }

    /// Takes typed handles on the maps (once) and arms the kernel's verdict
    /// cache.
    pub fn take_maps(&mut self) -> Result<Maps, DatapathError> {
        let mut maps = Maps::take(&mut self.ebpf)?;
        maps.new_generation()?;
        Ok(maps)
    }

    /// The loaded XDP program of role "both" (for `BPF_PROG_TEST_RUN`).
    pub fn xdp(&mut self) -> Result<&mut Xdp, DatapathError> {
        self.xdp_for(Role::Both)
    }

    /// The loaded XDP program serving `role` (for `BPF_PROG_TEST_RUN`).
    pub fn xdp_for(&mut self, role: Role) -> Result<&mut Xdp, DatapathError> {
        xdp_program(&mut self.ebpf, xdp_program_name(role))
    }

    /// Takes the ring buffer of HTTP samples (once).
    pub fn take_events(&mut self) -> Result<RingBuf<MapData>, DatapathError> {
        let map = self
            .ebpf
            .take_map(names::EVENTS)
            .ok_or(crate::enforce::MapsError::Missing(names::EVENTS))?;
        RingBuf::try_from(map).map_err(|error| {
            DatapathError::Maps(crate::enforce::MapsError::Kernel {
                op: "open",
                map: names::EVENTS,
                error,
            })
        })
    }

    /// The loaded object, for the programs other stages attach (TLS
    /// probes); they share its maps and go when it is dropped.
    pub fn ebpf_mut(&mut self) -> &mut Ebpf {
        &mut self.ebpf
    }

    /// What is attached so far.
    pub fn attachments(&self) -> &[Attachment] {
        &self.attachments
    }

    /// Attaches the XDP program to `iface`, adopting a pinned link left by a
    /// previous daemon. With `keep`, the link is pinned so it outlives us.
    pub fn attach(
        &mut self,
        spec: &InterfaceSpec,
        mode: XdpMode,
        keep: bool,
    ) -> Result<Attachment, DatapathError> {
        let (iface, role) = (spec.name.as_str(), spec.role);
        if role.captures() {
            let tc = tc_program(&mut self.ebpf)?;
            if let Err(error) = tc.attach(iface, TcAttachType::Egress) {
                // Kernels without TCX need the clsact qdisc first.
                let _ = aya::programs::tc::qdisc_add_clsact(iface);
                tc.attach(iface, TcAttachType::Egress)
                    .map_err(|_| DatapathError::Program {
                        what: format!("attaching TC egress to {iface}"),
                        error,
                    })?;
            }
        }
        let prog_name = xdp_program_name(role);
        if keep && self.pin_dir.is_none() {
            return Err(DatapathError::Link(
                "keep_attached needs pinned maps".into(),
            ));
        }
        let pin_path = self.pin_dir.as_deref().map(|d| link_pin_path(d, iface));
        if let Some(path) = pin_path.as_deref().filter(|p| p.exists()) {
            match self.adopt(iface, role, path) {
                Ok(a) => return Ok(a),
                Err(e) => {
                    warn!(iface, error = %e, "stale pinned link, replacing it");
                    let _ = std::fs::remove_file(path);
                }
            }
        }
        let prog = xdp_program(&mut self.ebpf, prog_name)?;
        let (link_id, used) = match mode {
            XdpMode::Native => (
                try_attach(prog, iface, AyaXdpMode::Driver)?,
                AttachMode::Native,
            ),
            XdpMode::Skb => (try_attach(prog, iface, AyaXdpMode::Skb)?, AttachMode::Skb),
            XdpMode::Auto => match try_attach(prog, iface, AyaXdpMode::Driver) {
                Ok(id) => (id, AttachMode::Native),
                Err(e) => {
                    info!(iface, error = %e, "native XDP unavailable, using generic (skb) mode");
                    (try_attach(prog, iface, AyaXdpMode::Skb)?, AttachMode::Skb)
                }
            },
        };
        if keep && let Some(path) = pin_path {
            let link = prog
                .take_link(link_id)
                .map_err(|error| DatapathError::Program {
                    what: format!("taking the XDP link of {iface}"),
                    error,
                })?;
            let fd: FdLink = link.try_into().map_err(|e| {
                DatapathError::Link(format!(
                    "cannot keep {iface} attached: the kernel gave a netlink attachment, not a bpf_link ({e})"
                ))
            })?;
            create_parent(&path)?;
            let pinned = fd.pin(&path).map_err(|e| {
                DatapathError::Link(format!("pinning link {}: {e}", path.display()))
            })?;
            self.pinned_links.push(pinned);
        }
        let a = Attachment {
            iface: iface.to_string(),
            role,
            mode: used,
            pinned: keep,
        };
        self.attachments.push(a.clone());
        Ok(a)
    }

    fn adopt(&mut self, iface: &str, role: Role, path: &Path) -> Result<Attachment, DatapathError> {
        let pinned = PinnedLink::from_pin(path)
            .map_err(|e| DatapathError::Link(format!("opening {}: {e}", path.display())))?;
        let fd: FdLink = pinned.into();
        let link = XdpLink::try_from(fd).map_err(|e| {
            DatapathError::Link(format!("{} is not an XDP link: {e}", path.display()))
        })?;
        let prog = xdp_program(&mut self.ebpf, xdp_program_name(role))?;
        prog.attach_to_link(link)
            .map_err(|error| DatapathError::Program {
                what: format!("replacing the program in the pinned link of {iface}"),
                error,
            })?;
        let a = Attachment {
            iface: iface.to_string(),
            role,
            mode: AttachMode::Adopted,
            pinned: true,
        };
        self.attachments.push(a.clone());
        Ok(a)
    }

    /// Detaches, unless `keep`: then pinned links stay and go on enforcing.
    pub fn shutdown(mut self, keep: bool) -> Vec<String> {
        let mut detached = Vec::new();
        if !keep {
            if let Some(dir) = &self.pin_dir {
                for a in &self.attachments {
                    let path = link_pin_path(dir, &a.iface);
                    if path.exists() && std::fs::remove_file(&path).is_err() {
                        warn!(path = %path.display(), "could not unpin link");
                    }
                }
            }
            for link in self.pinned_links.drain(..) {
                // The pin file is gone; dropping the fd detaches the link.
                drop(FdLink::from(link));
            }
            detached = self.attachments.iter().map(|a| a.iface.clone()).collect();
        }
        // Dropping the object detaches every link it still owns; pinned ones
        // stay attached.
        drop(self);
        detached
    }
}

fn create_parent(path: &Path) -> Result<(), DatapathError> {
    let parent = path.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(parent).map_err(|error| DatapathError::Io {
        what: "creating",
        path: parent.to_path_buf(),
        error,
    })
}

fn xdp_program<'a>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut Xdp, DatapathError> {
    let prog = ebpf
        .program_mut(name)
        .ok_or_else(|| DatapathError::Link(format!("program {name} missing")))?;
    prog.try_into().map_err(|error| DatapathError::Program {
        what: format!("program {name}"),
        error,
    })
}

fn tc_program(ebpf: &mut Ebpf) -> Result<&mut SchedClassifier, DatapathError> {
    let prog = ebpf
        .program_mut(programs::TC_EGRESS)
        .ok_or_else(|| DatapathError::Link(format!("program {} missing", programs::TC_EGRESS)))?;
    prog.try_into().map_err(|error| DatapathError::Program {
        what: format!("program {}", programs::TC_EGRESS),
        error,
    })
}

fn try_attach(
    prog: &mut Xdp,
    iface: &str,
    mode: AyaXdpMode,
) -> Result<aya::programs::xdp::XdpLinkId, DatapathError> {
    prog.attach(iface, mode)
        .map_err(|error| DatapathError::Program {
            what: format!("attaching XDP to {iface} ({mode:?} mode)"),
            error,
        })
}

/// Refuses pinned maps whose layout differs from this build; warns when only
/// their capacity differs from the config (capacity is fixed at creation).
fn check_pinned_maps(dir: &Path, cfg: &DatapathConfig) -> Result<(), DatapathError> {
    for name in names::ALL {
        let path = dir.join(name);
        if !path.exists() {
            continue;
        }
        let Ok(info) = MapInfo::from_pin(&path) else {
            continue;
        };
        let expected = expected_sizes(name);
        let found = (info.key_size(), info.value_size());
        if found != expected {
            return Err(DatapathError::IncompatiblePin {
                path,
                found,
                expected,
            });
        }
        let wanted = match name {
            names::BLOCK_IP => cfg.max_blocked_ips,
            names::BLOCK_CIDR => cfg.max_blocked_cidrs,
            names::ALLOW_CIDR => cfg.max_allowlist,
            names::SRC_STATS | names::SRC_STATS4 => cfg.tracked_sources(),
            _ => info.max_entries(),
        };
        if wanted != info.max_entries() {
            warn!(
                map = name,
                pinned = info.max_entries(),
                configured = wanted,
                "pinned map keeps its capacity; run `jwtmon reset` to apply the configured size"
            );
        }
    }
    Ok(())
}

/// Loads the pass-everything baseline program of the object (benchmarks
/// measure jwtmon's cost against it). It is never attached.
pub fn baseline_program(dp: &mut Datapath) -> Result<&mut Xdp, DatapathError> {
    let prog = xdp_program(&mut dp.ebpf, programs::XDP_BASELINE)?;
    prog.load().map_err(|error| DatapathError::Program {
        what: "loading the baseline program".into(),
        error,
    })?;
    Ok(prog)
}

/// Removes the pinned maps and links under `dir`: the datapath starts empty
/// the next time. Returns the paths removed.
pub fn reset(dir: &Path) -> Result<Vec<PathBuf>, DatapathError> {
    let mut removed = Vec::new();
    let links = dir.join("links");
    let mut paths: Vec<PathBuf> = names::ALL.iter().map(|n| dir.join(n)).collect();
    if let Ok(rd) = std::fs::read_dir(&links) {
        paths.extend(rd.flatten().map(|e| e.path()));
    }
    for path in paths {
        if path.exists() {
            std::fs::remove_file(&path).map_err(|error| DatapathError::Io {
                what: "removing",
                path: path.clone(),
                error,
            })?;
            removed.push(path);
        }
    }
    let _ = std::fs::remove_dir(&links);
    let _ = std::fs::remove_dir(dir);
    Ok(removed)
}
