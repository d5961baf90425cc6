//! jwtmon protects HTTP APIs from the kernel up.
//!
//! The modules follow the data, each importing only those below it:
//! - vocabulary: `finding` (the typed catalogue), `target`, `clock`, `openapi`,
//!   `endpoint`, `secret`, `metrics`, `event`, `privacy`;
//! - `capture` (kernel ring buffer or pcap) → `parse` (HTTP) → `observe`
//!   (pairing, client address);
//! - analyse: `analysis` (shared facts and the finding reporter), `jwt`,
//!   `detect` (the `Detector` registry), `sequence` → `decide`;
//! - act: `enforce` (kernel maps), `respond` (`incident`, `alert`,
//!   `export`); control: `admin`;
//! - drivers: `config` composes the sections, `engine` builds the stages
//!   (`workers` runs their stateless parts on more threads),
//!   `pipeline`/`offline` drive them, `daemon` runs it live, `cli` and
//!   `commands` serve the command line.

pub mod admin;
pub mod alert;
pub mod analysis;
pub mod bounded;
pub mod capture;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod decide;
pub mod detect;
pub mod endpoint;
pub mod enforce;
pub mod engine;
pub mod event;
pub mod export;
pub mod finding;
pub mod fleet;
pub mod guard;
pub mod incident;
pub mod jwt;
pub mod metrics;
pub mod observe;
pub mod offline;
pub mod openapi;
pub mod parse;
pub mod pipeline;
pub mod privacy;
pub mod reload;
pub mod respond;
pub mod secret;
pub mod sequence;
pub mod target;
pub mod transport;
pub mod workers;
