//! How a request was seen: in TCP segments, or as TLS plaintext. Shared
//! vocabulary of capture (which sets it) and findings (which carry it).

/// How the bytes were seen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// TCP segments (packet capture, or a capture file).
    #[default]
    Tcp,
    /// TLS plaintext from the server's `SSL_read`/`SSL_write`.
    Tls,
}
