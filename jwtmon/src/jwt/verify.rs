//! Signature checks: verification against the trusted keys, and the
//! attack shapes that need no key (psychic ECDSA signatures) or that use a
//! public key as an HMAC secret (algorithm confusion).

use hmac::{Hmac, Mac};
use jsonwebtoken::Algorithm;
use p521::ecdsa::signature::Verifier;
use sha2::{Sha256, Sha384, Sha512};

use super::{
    keys::{Family, Key, KeySet, Material},
    token::Token,
};

/// The outcome of verifying a token against a key set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SigVerdict {
    /// A key verified it (its kid, if any).
    Valid(Option<String>),
    /// Keys of the right family exist and none verified it.
    Invalid,
    /// The token names a kid that no key has.
    UnknownKey(String),
    /// No key of the token's algorithm family is configured.
    NoKey,
}

fn algorithm(alg: &str) -> Option<Algorithm> {
    Some(match alg {
        "HS256" => Algorithm::HS256,
        "HS384" => Algorithm::HS384,
        "HS512" => Algorithm::HS512,
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" | "Ed25519" => Algorithm::EdDSA,
        _ => return None,
    })
}

/// Whether `key` verifies `token` with `alg`.
pub fn verifies(token: &Token<'_>, key: &Key, alg: &str) -> bool {
    match &key.material {
        Material::Jwt(k) => {
            let Some(a) = algorithm(alg) else {
                return false;
            };
            // The family must match: a public key never verifies HS*.
            if Family::of(alg) != Some(key.family) {
                return false;
            }
            jsonwebtoken::crypto::verify(token.signature_b64, token.signing_input.as_bytes(), k, a)
                .unwrap_or(false)
        }
        Material::P521(vk) => {
            alg == "ES512"
                && p521::ecdsa::Signature::from_slice(&token.signature)
                    .is_ok_and(|sig| vk.verify(token.signing_input.as_bytes(), &sig).is_ok())
        }
    }
}

/// Verifies against the keys of the token's family (narrowed by `kid` when
/// the token names one). A key whose JWK names an `alg` verifies only that
/// algorithm (a PS512 key never verifies RS256: the wrong-primitive attack).
pub fn verify(token: &Token<'_>, keys: &KeySet) -> SigVerdict {
    let Some(family) = Family::of(&token.alg) else {
        return SigVerdict::NoKey;
    };
    let kid = token.header_str("kid");
    let usable: Vec<&Key> = keys
        .keys
        .iter()
        .filter(|k| k.family == family)
        .filter(|k| match k.alg.as_deref() {
            Some(pin) if Family::of(pin).is_some() => pin == token.alg,
            _ => true,
        })
        .collect();
    if usable.is_empty() {
        return SigVerdict::NoKey;
    }
    let candidates: Vec<&Key> = match kid {
        Some(kid) if keys.keys.iter().any(|k| k.kid.is_some()) => {
            let named: Vec<&Key> = usable
                .iter()
                .copied()
                .filter(|k| k.kid.as_deref() == Some(kid))
                .collect();
            if named.is_empty() {
                return SigVerdict::UnknownKey(kid.to_string());
            }
            named
        }
        _ => usable,
    };
    match candidates.iter().find(|k| verifies(token, k, &token.alg)) {
        Some(k) => SigVerdict::Valid(k.kid.clone()),
        None => SigVerdict::Invalid,
    }
}

/// HMAC of the signing input with `secret` equals the signature.
pub fn hmac_matches(alg: &str, secret: &[u8], input: &[u8], sig: &[u8]) -> bool {
    fn check<M: Mac + hmac::digest::KeyInit>(secret: &[u8], input: &[u8], sig: &[u8]) -> bool {
        let Ok(mut m) = <M as hmac::digest::KeyInit>::new_from_slice(secret) else {
            return false;
        };
        m.update(input);
        m.verify_slice(sig).is_ok()
    }
    match alg {
        "HS256" => check::<Hmac<Sha256>>(secret, input, sig),
        "HS384" => check::<Hmac<Sha384>>(secret, input, sig),
        "HS512" => check::<Hmac<Sha512>>(secret, input, sig),
        _ => false,
    }
}

/// For an HS* token where the issuer uses public keys: the public key that
/// verifies it as an HMAC secret (a confirmed confusion attack).
pub fn confusion_key<'k>(token: &Token<'_>, keys: &'k KeySet) -> Option<&'k Key> {
    keys.keys.iter().find(|k| {
        k.confusion_secrets.iter().any(|s| {
            hmac_matches(
                &token.alg,
                s,
                token.signing_input.as_bytes(),
                &token.signature,
            )
        })
    })
}

const P256_N: &str = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";
const P384_N: &str = "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973";
const P521_N: &str = "01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409";

fn order(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(0))
        .collect()
}

/// Why an ECDSA signature is the CVE-2022-21449 shape (r or s zero or not
/// below the curve order), if it is. `None` for other algorithms and for
/// signatures of the wrong length (those simply fail verification).
pub fn psychic(alg: &str, sig: &[u8]) -> Option<&'static str> {
    let (half, n) = match alg {
        "ES256" => (32, P256_N),
        "ES384" => (48, P384_N),
        "ES512" => (66, P521_N),
        _ => return None,
    };
    if sig.is_empty() || sig.iter().all(|&b| b == 0) {
        return Some("r = s = 0");
    }
    if sig.len() != 2 * half {
        return None;
    }
    let n = order(n);
    let (r, s) = sig.split_at(half);
    if r.iter().all(|&b| b == 0) {
        Some("r = 0")
    } else if s.iter().all(|&b| b == 0) {
        Some("s = 0")
    } else if r >= n.as_slice() {
        Some("r >= n")
    } else if s >= n.as_slice() {
        Some("s >= n")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psychic_shapes() {
        assert_eq!(psychic("ES256", &[0; 64]), Some("r = s = 0"));
        let mut sig = vec![1u8; 64];
        sig[32..].fill(0);
        assert_eq!(psychic("ES256", &sig), Some("s = 0"));
        let mut sig = order(P256_N);
        sig.extend([1u8; 32]);
        assert_eq!(psychic("ES256", &sig), Some("r >= n"));
        assert_eq!(psychic("ES256", &[1u8; 64]), None);
        assert_eq!(psychic("RS256", &[0; 64]), None);
        assert_eq!(order(P384_N).len(), 48);
        assert_eq!(order(P521_N).len(), 66);
    }
}
