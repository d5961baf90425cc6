//! Enforce: the kernel side of decisions. Loads and attaches the datapath,
//! and reads and writes its maps (blocks with TTLs, allowlist, counters).

pub mod config;
pub mod datapath;
pub mod enforcer;
pub mod import;
pub mod maps;

pub use config::{AllowlistConfig, DatapathConfig, InterfaceSpec, Role, XdpMode};
pub use datapath::{AttachMode, Attachment, Datapath, DatapathError};
pub use maps::{BlockSpec, BlockView, Maps, MapsError};
