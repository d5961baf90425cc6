//! `[capture]`: which ports are sampled, how much of each request and
//! response is kept, and how requests are paired with responses.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::reassembly::Limits;
use crate::target::Target;

/// `[capture]`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CaptureConfig {
    /// Monitored plain-HTTP server ports.
    pub ports: Vec<u16>,
    /// One request in N (0 = off).
    pub sample_rate: u32,
    /// Bytes the kernel copies of each client segment.
    pub request_bytes: u32,
    /// Bytes of each reassembled request (head and body) inspected.
    pub inspect_bytes: usize,
    /// Memory that reassembly may hold in all.
    pub max_reassembly_bytes: usize,
    /// Kernel cap on client bytes forwarded per connection and second
    /// (0: none).
    pub flow_bytes_per_second: u32,
    /// Response bytes kept.
    pub response_bytes: u32,
    /// Kernel cap on samples per second.
    pub max_records_per_second: u32,
    /// When a request without response is reported unanswered.
    #[serde(with = "humantime_serde")]
    pub response_timeout: Duration,
    /// Connections tracked for pairing.
    pub max_flows: usize,
    /// Memory that requests waiting for their responses may hold in all.
    pub max_pending_bytes: usize,
    /// Proxies whose forwarding headers are believed.
    pub trusted_proxies: Vec<Target>,
    /// The one header whose hops are believed from a trusted proxy.
    pub forwarded_header: ForwardedHeader,
    /// An untrusted source that forwards for this many distinct clients is
    /// a suspected proxy: never blocked, reported once (0: never).
    pub suspect_proxy_after: usize,
    /// `[capture.tls]`: TLS plaintext through OpenSSL uprobes.
    pub tls: super::tls::TlsConfig,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        Self {
            ports: vec![80, 3000, 5000, 8000, 8080],
            sample_rate: 1,
            request_bytes: jwtmon_common::MAX_REQUEST_CAPTURE,
            inspect_bytes: 64 << 10,
            max_reassembly_bytes: 64 << 20,
            flow_bytes_per_second: 4 << 20,
            response_bytes: 512,
            max_records_per_second: 200_000,
            response_timeout: Duration::from_secs(30),
            max_flows: 100_000,
            max_pending_bytes: 64 << 20,
            trusted_proxies: Vec::new(),
            forwarded_header: ForwardedHeader::XForwardedFor,
            suspect_proxy_after: 3,
            tls: super::tls::TlsConfig::default(),
        }
    }
}

/// The forwarding header whose hops are believed from trusted proxies.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardedHeader {
    /// `X-Forwarded-For` (what nginx, HAProxy and most load balancers set).
    #[default]
    XForwardedFor,
    /// `Forwarded: for=` (RFC 7239).
    Forwarded,
}

impl CaptureConfig {
    /// What bounds TCP reassembly.
    pub fn reassembly_limits(&self) -> Limits {
        Limits {
            inspect_bytes: self.inspect_bytes,
            response_bytes: self.response_bytes as usize,
            budget_bytes: self.max_reassembly_bytes,
            max_streams: self.max_flows.saturating_mul(2),
            ..Limits::default()
        }
    }

    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<(), String> {
        let c = self;
        if c.ports.len() > jwtmon_common::MAX_CAPTURE_PORTS || c.ports.contains(&0) {
            return Err(format!(
                "capture.ports: at most {} ports, none of them 0",
                jwtmon_common::MAX_CAPTURE_PORTS
            ));
        }
        for (name, value, max) in [
            (
                "capture.request_bytes",
                c.request_bytes,
                jwtmon_common::MAX_REQUEST_CAPTURE,
            ),
            (
                "capture.response_bytes",
                c.response_bytes,
                jwtmon_common::MAX_RESPONSE_CAPTURE,
            ),
        ] {
            if value == 0 || value > max {
                return Err(format!("{name} = {value}: must be between 1 and {max}"));
            }
        }
        if c.max_flows == 0 || c.max_flows > 10_000_000 {
            return Err(format!(
                "capture.max_flows = {}: must be between 1 and 10000000",
                c.max_flows
            ));
        }
        if !(1024..=16 << 20).contains(&c.inspect_bytes) {
            return Err(format!(
                "capture.inspect_bytes = {}: must be between 1024 and 16777216",
                c.inspect_bytes
            ));
        }
        if c.max_reassembly_bytes < c.inspect_bytes.max(1 << 20) {
            return Err(format!(
                "capture.max_reassembly_bytes = {}: at least 1048576 and at least inspect_bytes",
                c.max_reassembly_bytes
            ));
        }
        if c.max_pending_bytes < 1 << 16 {
            return Err(format!(
                "capture.max_pending_bytes = {}: at least 65536",
                c.max_pending_bytes
            ));
        }
        if c.response_timeout < Duration::from_millis(100) {
            return Err("capture.response_timeout: at least 100ms".into());
        }
        c.tls.validate()
    }
}
