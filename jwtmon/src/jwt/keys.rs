//! Trusted key material: HMAC secrets (file or environment), PEM public
//! keys, JWKS documents (files or fetched URLs). A key knows its `kid`, the
//! algorithm family it verifies, and for PEM keys the bytes an attacker
//! would misuse as an HMAC secret (algorithm confusion).

use std::path::Path;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::DecodingKey;
use serde_json::Value;

use super::config::IssuerConfig;

/// Errors loading keys. Messages name the file or variable, never a secret.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A key file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// An environment variable is unset or empty.
    #[error("environment variable {0} is not set")]
    Env(String),
    /// A PEM file holds no key jwtmon can use.
    #[error("{0}: not an RSA, EC (P-256/P-384) or Ed25519 public key in PEM form")]
    Pem(String),
    /// A JWKS document is not valid.
    #[error("{0}: not a JWKS document ({1})")]
    Jwks(String, String),
    /// Fetching a JWKS URL failed.
    #[error("fetching {0}: {1}")]
    Fetch(String, String),
}

/// Algorithm families.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// HS256/384/512.
    Hmac,
    /// RS* and PS*.
    Rsa,
    /// ES256/ES384 (and ES512 on P-521).
    Ec,
    /// EdDSA (Ed25519).
    Ed,
}

impl Family {
    /// The family of an `alg` value, if jwtmon knows it.
    pub fn of(alg: &str) -> Option<Family> {
        Some(match alg {
            "HS256" | "HS384" | "HS512" => Family::Hmac,
            "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512" => Family::Rsa,
            "ES256" | "ES384" | "ES512" => Family::Ec,
            "EdDSA" | "Ed25519" => Family::Ed,
            _ => return None,
        })
    }
}

/// How a key verifies.
#[derive(Clone)]
pub enum Material {
    /// jsonwebtoken's key (HMAC secret or public key).
    Jwt(DecodingKey),
    /// A P-521 public key (ES512; jsonwebtoken lacks it).
    P521(p521::ecdsa::VerifyingKey),
}

/// One trusted key.
#[derive(Clone)]
pub struct Key {
    /// `kid`, when the source names one.
    pub kid: Option<String>,
    /// `alg` pinned by the source (JWKS `alg`), if any.
    pub alg: Option<String>,
    /// Family it verifies.
    pub family: Family,
    /// Verification material.
    pub material: Material,
    /// Public-key bytes as an attacker would feed them to HMAC (the PEM
    /// text, with and without its final newline).
    pub confusion_secrets: Vec<Vec<u8>>,
    /// For HMAC keys: the secret, so the dictionary check can tell an
    /// operator their own secret is weak.
    pub hmac_secret: Option<Vec<u8>>,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({:?}, kid {:?})", self.family, self.kid)
    }
}

/// The keys of one issuer.
#[derive(Clone, Debug, Default)]
pub struct KeySet {
    /// Every key, in load order.
    pub keys: Vec<Key>,
}

fn read(path: &Path) -> Result<Vec<u8>, KeyError> {
    std::fs::read(path).map_err(|source| KeyError::Read {
        path: path.display().to_string(),
        source,
    })
}

fn hmac_key(secret: Vec<u8>, kid: Option<String>) -> Key {
    Key {
        kid,
        alg: None,
        family: Family::Hmac,
        material: Material::Jwt(DecodingKey::from_secret(&secret)),
        confusion_secrets: Vec::new(),
        hmac_secret: Some(secret),
    }
}

/// A PEM public key (RSA, EC P-256/P-384, Ed25519).
pub fn pem_key(pem: &[u8], name: &str) -> Result<Key, KeyError> {
    let text = String::from_utf8_lossy(pem);
    let (family, key) = if let Ok(k) = DecodingKey::from_rsa_pem(pem) {
        (Family::Rsa, k)
    } else if let Ok(k) = DecodingKey::from_ec_pem(pem) {
        (Family::Ec, k)
    } else if let Ok(k) = DecodingKey::from_ed_pem(pem) {
        (Family::Ed, k)
    } else {
        return Err(KeyError::Pem(name.to_string()));
    };
    let trimmed = text.trim_end().as_bytes().to_vec();
    let mut with_nl = trimmed.clone();
    with_nl.push(b'\n');
    Ok(Key {
        kid: None,
        alg: None,
        family,
        material: Material::Jwt(key),
        confusion_secrets: vec![with_nl, trimmed],
        hmac_secret: None,
    })
}

fn b64(v: &Value, field: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(v.get(field)?.as_str()?.trim_end_matches('='))
        .ok()
}

/// One JWK; `None` for key types jwtmon cannot verify with (skipped).
pub fn jwk_key(jwk: &Value) -> Option<Key> {
    let s = |f: &str| jwk.get(f).and_then(Value::as_str);
    let kid = s("kid").map(str::to_string);
    let alg = s("alg").map(str::to_string);
    if s("use").is_some_and(|u| u != "sig") {
        return None;
    }
    if let Some(ops) = jwk.get("key_ops").and_then(Value::as_array)
        && !ops.iter().any(|o| o == "verify")
    {
        return None;
    }
    let (family, material) = match s("kty")? {
        "oct" => {
            return Some(Key {
                alg,
                ..hmac_key(b64(jwk, "k")?, kid)
            });
        }
        "RSA" => (
            Family::Rsa,
            Material::Jwt(DecodingKey::from_rsa_components(s("n")?, s("e")?).ok()?),
        ),
        "EC" => match s("crv")? {
            "P-256" | "P-384" => (
                Family::Ec,
                Material::Jwt(DecodingKey::from_ec_components(s("x")?, s("y")?).ok()?),
            ),
            "P-521" => {
                let (x, y) = (b64(jwk, "x")?, b64(jwk, "y")?);
                let mut sec1 = vec![4u8];
                sec1.extend(pad(&x, 66));
                sec1.extend(pad(&y, 66));
                let vk = p521::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).ok()?;
                (Family::Ec, Material::P521(vk))
            }
            _ => return None,
        },
        "OKP" if s("crv")? == "Ed25519" => (
            Family::Ed,
            Material::Jwt(DecodingKey::from_ed_components(s("x")?).ok()?),
        ),
        _ => return None,
    };
    Some(Key {
        kid,
        alg,
        family,
        material,
        confusion_secrets: Vec::new(),
        hmac_secret: None,
    })
}

fn pad(v: &[u8], len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len.saturating_sub(v.len())];
    out.extend_from_slice(v);
    out
}

/// The usable keys of a JWKS document (or of a single JWK).
pub fn jwks_keys(json: &[u8], name: &str) -> Result<Vec<Key>, KeyError> {
    let v: Value =
        serde_json::from_slice(json).map_err(|e| KeyError::Jwks(name.into(), e.to_string()))?;
    let list = match v.get("keys") {
        Some(Value::Array(a)) => a.clone(),
        _ if v.get("kty").is_some() => vec![v],
        _ => return Err(KeyError::Jwks(name.into(), "no \"keys\" array".into())),
    };
    Ok(list.iter().filter_map(jwk_key).collect())
}

impl KeySet {
    /// Loads the keys an issuer entry names (not its URL: see
    /// [`fetch_jwks`]).
    pub fn load(cfg: &IssuerConfig) -> Result<Self, KeyError> {
        let mut keys = Vec::new();
        if let Some(path) = &cfg.hmac_secret_file {
            let mut s = read(path)?;
            while s.last().is_some_and(u8::is_ascii_whitespace) {
                s.pop();
            }
            keys.push(hmac_key(s, None));
        }
        if let Some(var) = &cfg.hmac_secret_env {
            let v = std::env::var(var)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| KeyError::Env(var.clone()))?;
            keys.push(hmac_key(v.into_bytes(), None));
        }
        for path in &cfg.public_key_files {
            keys.push(pem_key(&read(path)?, &path.display().to_string())?);
        }
        for path in &cfg.jwks_files {
            keys.extend(jwks_keys(&read(path)?, &path.display().to_string())?);
        }
        Ok(Self { keys })
    }

    /// Whether any key is asymmetric.
    pub fn has_asymmetric(&self) -> bool {
        self.keys.iter().any(|k| k.family != Family::Hmac)
    }
}

/// Fetches a JWKS URL (bounded size and time).
pub async fn fetch_jwks(client: &reqwest::Client, url: &str) -> Result<Vec<Key>, KeyError> {
    let fail = |e: String| KeyError::Fetch(url.to_string(), e);
    let resp = client
        .get(url)
        .timeout(std::time::Duration::from_secs(5))
        .send()
        .await
        .map_err(|e| fail(e.to_string()))?;
    if !resp.status().is_success() {
        return Err(fail(format!("HTTP {}", resp.status())));
    }
    let body = resp.bytes().await.map_err(|e| fail(e.to_string()))?;
    if body.len() > 1 << 20 {
        return Err(fail("document larger than 1 MiB".into()));
    }
    jwks_keys(&body, url)
}
