//! The fleet: many API hosts acting as one through Redis.
//!
//! - **Shared enforcement.** A block, unblock or allow made on any host
//!   (decision, CLI, admin API) is written as a key with its TTL
//!   (`PREFIX:block:TARGET`, authoritative) and published on
//!   `PREFIX:changes` (fast). Every other host applies it to its own kernel
//!   maps, where its own allowlist still wins. On start and after every
//!   reconnect a host reads all keys again, so a missed message is never
//!   a lost block.
//! - **Shared counts** ([`tally`]): failed logins per address and per
//!   username, and the addresses per token, are counted locally, flushed
//!   as deltas every `flush_interval` through one Lua script, and judged
//!   against the fleet totals; a finding names the nodes that saw it.
//! - **Redis down.** Every host keeps detecting and enforcing locally; the
//!   outage is counted and logged once; its own changes are queued
//!   (bounded) and published when Redis returns. No pipeline thread ever
//!   waits on Redis: everything goes through queues to one task.

mod change;
pub mod config;
mod handle;
mod link;
pub mod tally;

pub use change::{Change, Op, kernel_reason, unix_ms};
pub use config::FleetConfig;
pub use handle::{Fleet, LinkStats};
pub use link::{Conn, LinkError, Parts, connect, publish_now, run};

/// How the daemon starts with respect to the fleet.
pub enum Start {
    /// No `[fleet]`.
    Off,
    /// Redis answered.
    Connected(Box<Conn>),
    /// Redis did not answer (and `required = false`): start alone, join later.
    Unreachable,
}
