//! jwtmon protects HTTP APIs from the kernel up.
//!
//! Data flow: the kernel datapath (`jwtmon-ebpf`) counts and drops; this
//! library loads it and manages its maps (`enforce`), runs the daemon
//! (`daemon`) and serves the CLI (`cli`, `commands`). Later stages add
//! capture → parse → analyse → decide → alert/store between them.

pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod enforce;
pub mod target;
