//! jwtmon protects HTTP APIs from the kernel up.
//!
//! Data flow: `capture` (kernel ring buffer or pcap) → `parse` (HTTP) →
//! `observe` (pairing, client address) → `jwt` (token analysis), `detect`
//! (behaviour), `sequence` (API call order) → `finding`s → `decide` →
//! `enforce` (kernel maps). `daemon` runs it live; `cli`/`commands` serve the
//! command line.

pub mod admin;
pub mod alert;
pub mod analysis;
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
pub mod incident;
pub mod jwt;
pub mod metrics;
pub mod observe;
pub mod offline;
pub mod parse;
pub mod pipeline;
pub mod privacy;
pub mod respond;
pub mod secret;
pub mod sequence;
pub mod target;
