//! The server side of a TLS connection: the address its listening socket
//! is bound to, found once per (process, listening fd) through
//! `/proc/PID/fd` and that process's `/proc/PID/net/tcp{,6}`. Listening
//! sockets live long, so this does not race with short connections.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    num::NonZeroUsize,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use crate::bounded::BoundedLru;

/// Listening sockets remembered.
const REMEMBERED: usize = 4096;
/// A lookup is trusted this long (a pid and fd can be reused).
const FRESH: Duration = Duration::from_mins(1);

/// Where a listening socket of unknown address is put (port 0).
pub const UNKNOWN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);

/// Cached lookups of listening-socket addresses.
pub struct Servers {
    proc_root: PathBuf,
    cache: BoundedLru<(u32, u32), (SocketAddr, Instant)>,
    /// Lookups that found nothing (the process or socket was gone).
    pub unknown: u64,
}

impl Servers {
    /// Lookups below `proc_root` (`/proc`).
    pub fn new(proc_root: &Path) -> Self {
        Self {
            proc_root: proc_root.to_path_buf(),
            cache: BoundedLru::new(NonZeroUsize::new(REMEMBERED).unwrap_or(NonZeroUsize::MIN)),
            unknown: 0,
        }
    }

    /// The local address of `listen_fd` in process `tgid`, or [`UNKNOWN`].
    pub fn address(&mut self, tgid: u32, listen_fd: u32) -> SocketAddr {
        if let Some((a, at)) = self.cache.get(&(tgid, listen_fd))
            && at.elapsed() < FRESH
        {
            return *a;
        }
        let found = self.lookup(tgid, listen_fd);
        if found.is_none() {
            self.unknown += 1;
        }
        let a = found.unwrap_or(UNKNOWN);
        self.cache.put((tgid, listen_fd), (a, Instant::now()));
        a
    }

    fn lookup(&self, tgid: u32, fd: u32) -> Option<SocketAddr> {
        let base = self.proc_root.join(tgid.to_string());
        let link = std::fs::read_link(base.join("fd").join(fd.to_string())).ok()?;
        let inode: u64 = link
            .to_str()?
            .strip_prefix("socket:[")?
            .strip_suffix(']')?
            .parse()
            .ok()?;
        ["tcp", "tcp6"].iter().find_map(|t| {
            let text = std::fs::read_to_string(base.join("net").join(t)).ok()?;
            local_address_of(&text, inode)
        })
    }
}

/// The local address of the socket with `inode` in a `/proc/net/tcp` or
/// `tcp6` table.
pub fn local_address_of(table: &str, inode: u64) -> Option<SocketAddr> {
    table.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
        if cols.get(9)?.parse::<u64>().ok()? != inode {
            return None;
        }
        parse_hex_address(cols.get(1)?)
    })
}

/// `0100007F:1F90` (IPv4) or 32 hex digits `:PORT` (IPv6): each 32-bit
/// word in the kernel's byte order (little-endian here).
fn parse_hex_address(s: &str) -> Option<SocketAddr> {
    let (addr, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        let w = u32::from_str_radix(addr.get(i * 8..i * 8 + 8)?, 16).ok()?;
        Some(w.to_le_bytes())
    };
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                b[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            let v6 = Ipv6Addr::from(b);
            v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_tables_and_ignores_other_inodes() {
        let v4 = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0
   1: 0200000A:01BB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1 0000000000000000 100 0 0 10 0
";
        assert_eq!(
            local_address_of(v4, 777),
            Some("10.0.0.2:443".parse().unwrap())
        );
        assert_eq!(
            local_address_of(v4, 4242),
            Some("127.0.0.1:8080".parse().unwrap())
        );
        assert_eq!(local_address_of(v4, 1), None);
        let v6 = "header
   0: 00000000000000000000000001000000:01BB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 55 1
   1: 0000000000000000FFFF00000100007F:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 56 1
";
        assert_eq!(local_address_of(v6, 55), Some("[::1]:443".parse().unwrap()));
        assert_eq!(
            local_address_of(v6, 56),
            Some("127.0.0.1:80".parse().unwrap())
        );
    }

    #[test]
    fn finds_a_real_listening_socket_of_this_process() {
        use std::os::fd::AsRawFd;
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let want = l.local_addr().unwrap();
        let mut s = Servers::new(Path::new("/proc"));
        let got = s.address(std::process::id(), l.as_raw_fd() as u32);
        assert_eq!(got, want);
        assert_eq!(s.address(std::process::id(), 999_999), UNKNOWN);
        assert_eq!(s.unknown, 1);
    }
}
