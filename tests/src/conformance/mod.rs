//! Harnesses that grade jwtmon against public corpora kept outside the
//! project (`../shared/corpora` by default). The data is read from the
//! given directory, never copied into the repository.

use std::path::{Path, PathBuf};

pub mod benign;
pub mod crs;
pub mod jws;
pub mod llhttp;
pub mod sqli;

/// The corpora directory: `$JWTMON_CORPORA`, else `../shared/corpora` next
/// to the workspace. `None` (with the reason printed) when it is absent.
pub fn corpora_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("JWTMON_CORPORA").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpora"),
        PathBuf::from,
    );
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "SKIP: corpora directory {} not found (set JWTMON_CORPORA)",
            dir.display()
        );
        None
    }
}

/// `dir/sub` when present, else `None` with a clear message.
pub fn corpus(dir: &Path, sub: &str) -> Option<PathBuf> {
    let p = dir.join(sub);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("SKIP: {} is absent", p.display());
        None
    }
}
