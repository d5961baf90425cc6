//! `[incidents]`: where the register lives and how long it keeps rows.

use std::{path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};

/// `[incidents]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct IncidentConfig {
    /// Keep an incident register at all.
    pub enabled: bool,
    /// The SQLite file (relative: under `daemon.state_dir`; created with
    /// its directory when missing).
    pub database: PathBuf,
    /// Incidents first seen longer ago than this many days are deleted.
    pub retention_days: u32,
    /// How often the retention sweep runs.
    #[serde(with = "humantime_serde")]
    pub retention_interval: Duration,
    /// Writes are batched and flushed this often.
    #[serde(with = "humantime_serde")]
    pub flush_interval: Duration,
    /// Incident updates held in memory while the database is unwritable;
    /// beyond this the oldest are dropped (and counted).
    pub max_pending: usize,
    /// A finding of the same kind from the same source updates the
    /// incident if it came within this long of the previous one;
    /// otherwise it opens a new incident.
    #[serde(with = "humantime_serde")]
    pub merge_window: Duration,
    /// Live incidents tracked in memory (the least recently active are
    /// forgotten first; they stay in the database).
    pub max_live: usize,
}

impl Default for IncidentConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            database: PathBuf::from("incidents.db"),
            retention_days: 180,
            retention_interval: Duration::from_hours(1),
            flush_interval: Duration::from_secs(1),
            max_pending: 100_000,
            merge_window: Duration::from_hours(1),
            max_live: 100_000,
        }
    }
}
