//! The revocation list: tokens revoked by `jti`, by `token_id`, by `kid`,
//! or every token of a subject (optionally only those issued before a
//! time). A text file, one entry per line, reloaded when it changes.
//!
//! ```text
//! # comment
//! jti 4f1c9a
//! token_id 0123456789abcdef
//! kid old-signing-key
//! sub alice issued_before 1735689600
//! sub mallory
//! ```

mod writer;

use std::{
    collections::{HashMap, HashSet},
    path::{Path, PathBuf},
    sync::Arc,
    time::SystemTime,
};

use writer::{Writer, modified};

/// Errors reading the list.
#[derive(Debug, thiserror::Error)]
pub enum RevocationError {
    /// The file could not be read.
    #[error("reading {0}: {1}")]
    Read(String, std::io::Error),
    /// A line is not an entry.
    #[error("{file}:{line}: {why}")]
    Line {
        /// The file.
        file: String,
        /// 1-based line number.
        line: usize,
        /// Why.
        why: String,
    },
}

/// What a revoked token matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Revoked {
    /// By `jti`.
    Jti,
    /// By `token_id`.
    TokenId,
    /// By `kid`.
    Kid,
    /// By subject (and issue time).
    Subject,
}

impl Revoked {
    /// Stable name for the evidence.
    pub fn as_str(&self) -> &'static str {
        match self {
            Revoked::Jti => "jti",
            Revoked::TokenId => "token_id",
            Revoked::Kid => "kid",
            Revoked::Subject => "sub",
        }
    }
}

/// The parsed list.
#[derive(Clone, Debug, Default)]
pub struct RevocationList {
    jti: HashSet<String>,
    token_id: HashSet<String>,
    kid: HashSet<String>,
    /// Subject → revoke tokens issued before (None: all).
    sub: HashMap<String, Option<i64>>,
    source: Option<(PathBuf, Option<SystemTime>)>,
    /// Writes the file (off the pipeline thread).
    writer: Option<Arc<Writer>>,
}

impl RevocationList {
    /// Parses list text.
    pub fn parse(text: &str, file: &str) -> Result<Self, RevocationError> {
        let mut list = Self::default();
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let err = |why: &str| RevocationError::Line {
                file: file.to_string(),
                line: i + 1,
                why: why.to_string(),
            };
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["jti", v] => {
                    list.jti.insert(v.to_string());
                }
                ["token_id", v] if v.len() == 16 && v.bytes().all(|b| b.is_ascii_hexdigit()) => {
                    list.token_id.insert(v.to_ascii_lowercase());
                }
                ["token_id", _] => return Err(err("token_id must be 16 hex characters")),
                ["kid", v] => {
                    list.kid.insert(v.to_string());
                }
                ["sub", s] => {
                    list.sub.insert(s.to_string(), None);
                }
                ["sub", s, "issued_before", t] => {
                    let t = t
                        .parse()
                        .map_err(|_| err("issued_before must be Unix seconds"))?;
                    list.sub.insert(s.to_string(), Some(t));
                }
                _ => {
                    return Err(err(
                        "expected `jti V`, `token_id HEX16`, `kid V` or `sub S [issued_before UNIX]`",
                    ));
                }
            }
        }
        Ok(list)
    }

    /// Loads a list file (and starts its writer).
    pub fn load(path: &Path) -> Result<Self, RevocationError> {
        let mut list = Self::read(path)?;
        list.writer = Some(Arc::new(Writer::start(path.to_path_buf())));
        Ok(list)
    }

    fn read(path: &Path) -> Result<Self, RevocationError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| RevocationError::Read(path.display().to_string(), e))?;
        let mut list = Self::parse(&text, &path.display().to_string())?;
        list.source = Some((path.to_path_buf(), modified(path)));
        Ok(list)
    }

    /// Reloads the file when its modification time changed (our own
    /// writes are no change). A broken new version keeps the old list (and
    /// returns the error to report). Revocations still queued for the file
    /// stay.
    pub fn reload_if_changed(&mut self) -> Result<bool, RevocationError> {
        let Some((path, seen)) = self.source.clone() else {
            return Ok(false);
        };
        let now = modified(&path);
        let own = self.writer.as_ref().and_then(|w| w.own_write());
        if now == seen || (now.is_some() && now == own) {
            if let Some(s) = &mut self.source {
                s.1 = now;
            }
            return Ok(false);
        }
        // What is not in the file yet, taken before the file is read: an
        // append the writer finishes in between is then in one or the
        // other, never in neither.
        let unwritten = self
            .writer
            .as_ref()
            .map(|w| w.unwritten())
            .unwrap_or_default();
        let mut fresh = Self::read(&path)?;
        fresh.writer = self.writer.take();
        fresh.token_id.extend(unwritten);
        *self = fresh;
        Ok(true)
    }

    fn check_id(token_id: &str) -> Result<String, RevocationError> {
        let id = token_id.to_ascii_lowercase();
        if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(RevocationError::Line {
                file: "decision".into(),
                line: 0,
                why: "token_id must be 16 hex characters".into(),
            });
        }
        Ok(id)
    }

    /// Adds a `token_id` entry at once in memory, and queues it for the
    /// list's file (if any), so it survives restarts and reloads; the
    /// pipeline never waits for the disk.
    pub fn revoke_token_id(&mut self, token_id: &str) -> Result<(), RevocationError> {
        let id = Self::check_id(token_id)?;
        if self.token_id.insert(id.clone())
            && let Some(w) = &self.writer
        {
            w.append(&id);
        }
        Ok(())
    }

    /// Like [`Self::revoke_token_id`], returning once the file holds it
    /// (an operator's revocation: the answer says it is durable).
    pub fn revoke_token_id_now(&mut self, token_id: &str) -> Result<(), RevocationError> {
        let id = Self::check_id(token_id)?;
        if self.token_id.insert(id.clone())
            && let Some(w) = &self.writer
        {
            w.append_now(&id).map_err(|e| self.file_error(e))?;
        }
        Ok(())
    }

    fn file_error(&self, why: String) -> RevocationError {
        let file = self
            .source
            .as_ref()
            .map(|(p, _)| p.display().to_string())
            .unwrap_or_default();
        RevocationError::Read(file, std::io::Error::other(why))
    }

    /// Removes a `token_id` entry (and its lines in the list's file, if
    /// any). Returns whether it was there.
    pub fn unrevoke_token_id(&mut self, token_id: &str) -> Result<bool, RevocationError> {
        let id = token_id.to_ascii_lowercase();
        if !self.token_id.remove(&id) {
            return Ok(false);
        }
        if let Some(w) = &self.writer {
            w.remove_now(&id).map_err(|e| self.file_error(e))?;
        }
        Ok(true)
    }

    /// Revocations a full file queue kept in memory only.
    pub fn unsaved(&self) -> u64 {
        self.writer.as_ref().map_or(0, |w| w.dropped())
    }

    /// The `token_id` entries.
    pub fn token_ids(&self) -> Vec<String> {
        let mut v: Vec<String> = self.token_id.iter().cloned().collect();
        v.sort();
        v
    }

    /// Whether `id` (a `token_id` or an `api_key_id`) is on the list.
    pub fn has_id(&self, id: &str) -> bool {
        self.token_id.contains(id)
    }

    /// Entries in the list.
    pub fn len(&self) -> usize {
        self.jti.len() + self.token_id.len() + self.kid.len() + self.sub.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a token is revoked, and by what. `digest` is the token's
    /// SHA-256 (its `token_id` is derived only when such entries exist).
    pub fn check(
        &self,
        digest: &[u8; 32],
        jti: Option<&str>,
        kid: Option<&str>,
        sub: Option<&str>,
        iat: Option<i64>,
    ) -> Option<Revoked> {
        if self.is_empty() {
            return None;
        }
        if !self.token_id.is_empty() && self.token_id.contains(&crate::parse::hex16(digest)) {
            return Some(Revoked::TokenId);
        }
        if jti.is_some_and(|j| self.jti.contains(j)) {
            return Some(Revoked::Jti);
        }
        if kid.is_some_and(|k| self.kid.contains(k)) {
            return Some(Revoked::Kid);
        }
        match sub.and_then(|s| self.sub.get(s)) {
            Some(None) => Some(Revoked::Subject),
            Some(Some(before)) if iat.is_none_or(|iat| iat < *before) => Some(Revoked::Subject),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(hex: &str) -> [u8; 32] {
        let mut d = [0u8; 32];
        for (i, b) in d.iter_mut().take(8).enumerate() {
            *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
        }
        d
    }

    #[test]
    fn entries_match() {
        let l = RevocationList::parse(
            "# x\njti j1\ntoken_id 0123456789ABCDEF\nkid k0\nsub alice issued_before 100\nsub bob\n",
            "t",
        )
        .unwrap();
        assert_eq!(l.len(), 5);
        assert_eq!(
            l.check(&id("0123456789abcdef"), None, None, None, None),
            Some(Revoked::TokenId)
        );
        assert_eq!(
            l.check(&[0; 32], Some("j1"), None, None, None),
            Some(Revoked::Jti)
        );
        assert_eq!(
            l.check(&[0; 32], None, Some("k0"), None, None),
            Some(Revoked::Kid)
        );
        assert_eq!(
            l.check(&[0; 32], None, None, Some("alice"), Some(99)),
            Some(Revoked::Subject)
        );
        assert_eq!(
            l.check(&[0; 32], None, None, Some("alice"), Some(100)),
            None
        );
        assert_eq!(
            l.check(&[0; 32], None, None, Some("bob"), Some(1)),
            Some(Revoked::Subject)
        );
        assert_eq!(
            l.check(&[0; 32], Some("j2"), None, Some("carol"), None),
            None
        );
        let e = RevocationList::parse("jti a\nbogus\n", "f").unwrap_err();
        assert!(e.to_string().starts_with("f:2:"), "{e}");
    }

    #[test]
    fn revoke_and_unrevoke_edit_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("revoked.txt");
        std::fs::write(&p, "jti j1\ntoken_id 0123456789abcdef\n").unwrap();
        let mut l = RevocationList::load(&p).unwrap();
        l.revoke_token_id("fedcba9876543210").unwrap();
        assert_eq!(l.token_ids().len(), 2);
        assert!(l.unrevoke_token_id("0123456789ABCDEF").unwrap());
        assert!(!l.unrevoke_token_id("0123456789abcdef").unwrap());
        let again = RevocationList::load(&p).unwrap();
        assert_eq!(again.token_ids(), ["fedcba9876543210"]);
        assert_eq!(again.len(), 2, "the jti entry stays");
        assert!(
            !l.reload_if_changed().unwrap(),
            "our own edit is not a change"
        );
    }

    /// Automatic revocations go to the file off the caller's thread; an
    /// operator's edit meanwhile reloads the list without losing the ones
    /// still queued, and the file ends up holding them all.
    #[test]
    fn queued_revocations_survive_a_reload_and_reach_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("revoked.txt");
        std::fs::write(&p, "").unwrap();
        let mut l = RevocationList::load(&p).unwrap();
        for i in 0..1000u64 {
            l.revoke_token_id(&format!("{i:016x}")).unwrap();
        }
        // The operator adds a line by hand.
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        std::io::Write::write_all(&mut f, b"kid retired-key\n").unwrap();
        drop(f);
        std::thread::sleep(std::time::Duration::from_millis(20));
        let _ = l.reload_if_changed().unwrap();
        assert_eq!(l.token_ids().len(), 1000, "nothing queued is lost");
        // A durable revocation is a barrier: everything before it is written.
        l.revoke_token_id_now("ffffffffffffffff").unwrap();
        let again = RevocationList::read(&p).unwrap();
        assert_eq!(again.token_ids().len(), 1001);
        assert_eq!(again.len(), 1002, "and the operator's line");
        assert_eq!(l.unsaved(), 0);
    }
}
