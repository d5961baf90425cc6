//! HTTPS without terminating it: OpenSSL's plaintext through uprobes
//! (`[capture.tls]`). The kernel side (`jwtmon-ebpf/src/tls.rs`) puts what
//! a TLS server reads and writes into the capture ring as ordinary
//! records, each attributed to the peer the kernel accepted; this module
//! finds the libraries and keeps the probes on them ([`probes`]), names
//! the server side ([`server`]) and turns the records into messages
//! marked `transport: "tls"` ([`assemble`]).

pub mod assemble;
pub mod config;
pub mod discover;
pub mod probes;
pub mod server;

pub use assemble::{TlsAssembler, TlsAssemblyStats};
pub use config::TlsConfig;
pub use probes::{TlsError, TlsProbeStats, TlsProbes};
