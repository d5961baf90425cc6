//! Secrets from files or environment variables (webhook URLs, SMTP
//! passwords, API tokens, the pseudonymization key): loaded once, never
//! printed — their `Debug` and `Display` are redacted.

use std::{fmt, path::Path};

/// Why a secret could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The file could not be read.
    #[error("{what}: cannot read secret file {path}: {source}")]
    File {
        /// What the secret is for.
        what: String,
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The variable is not set (or not UTF-8).
    #[error("{what}: environment variable {var} is not set")]
    Env {
        /// What the secret is for.
        what: String,
        /// The variable.
        var: String,
    },
    /// Present but empty.
    #[error("{what}: the secret is empty")]
    Empty {
        /// What the secret is for.
        what: String,
    },
}

/// A loaded secret. Only [`Secret::expose`] gives the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Loads a secret from `file` (first, trimmed of surrounding whitespace)
/// or the environment variable `env`; `Ok(None)` when neither is given.
pub fn load(
    what: &str,
    file: Option<&Path>,
    env: Option<&str>,
) -> Result<Option<Secret>, SecretError> {
    let value = match (file, env) {
        (Some(path), _) => std::fs::read_to_string(path)
            .map_err(|source| SecretError::File {
                what: what.into(),
                path: path.display().to_string(),
                source,
            })?
            .trim()
            .to_string(),
        (None, Some(var)) => std::env::var(var).map_err(|_| SecretError::Env {
            what: what.into(),
            var: var.into(),
        })?,
        (None, None) => return Ok(None),
    };
    if value.is_empty() {
        return Err(SecretError::Empty { what: what.into() });
    }
    Ok(Some(Secret(value)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_from_file_or_env_and_never_prints() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("url");
        std::fs::write(&p, "https://hooks.example/T0/B0/xyz\n").unwrap();
        let s = load("slack url", Some(&p), None).unwrap().unwrap();
        assert_eq!(s.expose(), "https://hooks.example/T0/B0/xyz");
        assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
        let e = load("smtp password", None, Some("JWTMON_TEST_SURELY_UNSET")).unwrap_err();
        assert!(e.to_string().contains("JWTMON_TEST_SURELY_UNSET"), "{e}");
        std::fs::write(&p, "  \n").unwrap();
        assert!(matches!(
            load("x", Some(&p), None),
            Err(SecretError::Empty { .. })
        ));
        assert!(load("x", None, None).unwrap().is_none());
        let e = load("x", Some(&dir.path().join("missing")), None).unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
    }
}
