//! Where OpenSSL is: every `libssl.so.3` / `libssl.so.1.1` that a running
//! process maps (read through that process's root, so a container's copy
//! counts) and those `ldconfig` knows. One file is one probe target
//! however many paths lead to it: targets are told apart by device and
//! inode.

use std::{
    collections::BTreeMap,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    process::Command,
};

/// One file to put probes on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// A path this process can open (below `/proc/PID/root` for another
    /// process's file).
    pub path: PathBuf,
    /// The path as the mapping process names it (for logs).
    pub shown: String,
}

/// Device and inode: what a uprobe is attached to.
pub type FileId = (u64, u64);

/// True for the shared-library names of OpenSSL 3 and 1.1.
pub fn is_openssl(name: &str) -> bool {
    ["libssl.so.3", "libssl.so.1.1"]
        .iter()
        .any(|n| name == *n || name.strip_prefix(n).is_some_and(|r| r.starts_with('.')))
}

/// The mapped file paths of a `/proc/PID/maps` text that are OpenSSL.
pub fn openssl_in_maps(maps: &str) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for line in maps.lines() {
        // address perms offset dev inode path
        let Some(path) = line.split_whitespace().nth(5) else {
            continue;
        };
        if !path.starts_with('/') || line.ends_with(" (deleted)") {
            continue;
        }
        let name = path.rsplit('/').next().unwrap_or(path);
        if is_openssl(name) && !out.contains(&path) {
            out.push(path);
        }
    }
    out
}

/// The OpenSSL paths in `ldconfig -p` output.
pub fn openssl_in_ldconfig(text: &str) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|l| {
            let (name, rest) = l.trim().split_once(' ')?;
            let path = rest.rsplit_once("=> ")?.1.trim();
            is_openssl(name).then(|| PathBuf::from(path))
        })
        .collect()
}

/// Every OpenSSL found now, by file.
pub fn scan(proc_root: &Path) -> BTreeMap<FileId, Target> {
    let mut found = BTreeMap::new();
    let mut add = |path: PathBuf, shown: String| {
        if let Ok(m) = std::fs::metadata(&path) {
            found
                .entry((m.dev(), m.ino()))
                .or_insert(Target { path, shown });
        }
    };
    for path in ldconfig() {
        let shown = path.display().to_string();
        add(path, shown);
    }
    let Ok(dir) = std::fs::read_dir(proc_root) else {
        return found;
    };
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        // A process may be gone by now: nothing to read, nothing to do.
        let Ok(maps) = std::fs::read_to_string(proc_root.join(pid).join("maps")) else {
            continue;
        };
        for path in openssl_in_maps(&maps) {
            let through_root = proc_root
                .join(pid)
                .join("root")
                .join(path.trim_start_matches('/'));
            add(through_root, path.to_string());
        }
    }
    found
}

/// What `ldconfig -p` lists (nothing when it cannot run).
fn ldconfig() -> Vec<PathBuf> {
    for bin in ["/sbin/ldconfig", "/usr/sbin/ldconfig", "ldconfig"] {
        if let Ok(out) = Command::new(bin).arg("-p").output()
            && out.status.success()
        {
            return openssl_in_ldconfig(&String::from_utf8_lossy(&out.stdout));
        }
    }
    Vec::new()
}

/// The file of a configured path.
pub fn file_id(path: &Path) -> std::io::Result<FileId> {
    let m = std::fs::metadata(path)?;
    Ok((m.dev(), m.ino()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_openssl_in_maps_and_ldconfig_only() {
        let maps = "\
7f00-7f10 r--p 00000000 08:01 1234 /usr/lib/x86_64-linux-gnu/libssl.so.3
7f10-7f20 r-xp 00010000 08:01 1234 /usr/lib/x86_64-linux-gnu/libssl.so.3
7f20-7f30 r-xp 00000000 08:01 99 /usr/lib/x86_64-linux-gnu/libcrypto.so.3
7f30-7f40 r-xp 00000000 08:01 98 /opt/old/libssl.so.1.1
7f40-7f50 r-xp 00000000 08:01 97 /opt/x/libssl.so.3.2.1
7f50-7f60 r-xp 00000000 08:01 96 /tmp/libssl.so.3 (deleted)
7f60-7f70 r-xp 00000000 08:01 95 /opt/libssl.so.30
7ffd-7ffe rw-p 00000000 00:00 0 [stack]
short line
";
        assert_eq!(
            openssl_in_maps(maps),
            [
                "/usr/lib/x86_64-linux-gnu/libssl.so.3",
                "/opt/old/libssl.so.1.1",
                "/opt/x/libssl.so.3.2.1"
            ]
        );
        let ld = "\
1234 libs found in cache `/etc/ld.so.cache'
\tlibssl.so.3 (libc6,x86-64) => /lib/x86_64-linux-gnu/libssl.so.3
\tlibsslcommon.so.0 (libc6,x86-64) => /lib/x86_64-linux-gnu/libsslcommon.so.0
\tlibssl.so (libc6,x86-64) => /lib/x86_64-linux-gnu/libssl.so
";
        assert_eq!(
            openssl_in_ldconfig(ld),
            [PathBuf::from("/lib/x86_64-linux-gnu/libssl.so.3")]
        );
    }
}
