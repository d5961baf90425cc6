//! Compact JWS parsing without trusting anything: three base64url parts,
//! a JSON header with `alg`, a JSON payload. Every failure has a reason
//! (the `jwt_malformed` evidence); nothing here panics.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Map, Value};

/// Why a token is not a well-formed JWS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not three dot-separated parts.
    #[error("not three dot-separated parts")]
    Parts,
    /// A part is not base64url.
    #[error("{0} is not base64url")]
    Base64(&'static str),
    /// Header or payload is not a JSON object.
    #[error("{0} is not a JSON object")]
    Json(&'static str),
    /// The header has no string `alg`.
    #[error("header has no alg")]
    NoAlg,
}

/// A parsed compact JWS.
#[derive(Clone, Debug)]
pub struct Token<'a> {
    /// The header object.
    pub header: Map<String, Value>,
    /// The claims object (empty when the payload is not a JSON object).
    pub claims: Map<String, Value>,
    /// Whether the payload is a JSON object (a JWT); a JWS may carry any
    /// payload, a JWT may not.
    pub payload_is_json: bool,
    /// `alg` as sent.
    pub alg: String,
    /// `base64(header) "." base64(payload)`: what the signature covers.
    pub signing_input: &'a str,
    /// The signature part, still base64url.
    pub signature_b64: &'a str,
    /// The decoded signature.
    pub signature: Vec<u8>,
}

/// Strict base64url without padding (RFC 7515 2): `=` or characters
/// outside the alphabet make the token malformed.
fn decode(part: &str, what: &'static str) -> Result<Vec<u8>, TokenError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenError::Base64(what))
}

fn object(part: &str, what: &'static str) -> Result<Map<String, Value>, TokenError> {
    let bytes = decode(part, what)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(TokenError::Json(what)),
    }
}

/// Parses a compact JWS.
pub fn parse(token: &str) -> Result<Token<'_>, TokenError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Parts);
    };
    let header = object(h, "header")?;
    let (claims, payload_is_json) = match object(p, "payload") {
        Ok(c) => (c, true),
        Err(TokenError::Base64(w)) => return Err(TokenError::Base64(w)),
        Err(_) => (Map::new(), false),
    };
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(TokenError::NoAlg)?
        .to_string();
    let signature = decode(s, "signature")?;
    Ok(Token {
        header,
        claims,
        payload_is_json,
        alg,
        signing_input: &token[..h.len() + 1 + p.len()],
        signature_b64: s,
        signature,
    })
}

impl Token<'_> {
    /// A string header field.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header.get(name).and_then(Value::as_str)
    }

    /// A string claim.
    pub fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    /// A numeric date claim (seconds since the epoch).
    pub fn claim_time(&self, name: &str) -> Option<i64> {
        let v = self.claims.get(name)?;
        v.as_i64().or_else(|| v.as_f64().map(|f| f as i64))
    }

    /// `aud` as a list (a string or an array of strings).
    pub fn audiences(&self) -> Vec<String> {
        match self.claims.get("aud") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    #[test]
    fn parses_and_rejects() {
        let t = format!(
            "{}.{}.{}",
            b64(r#"{"alg":"HS256","kid":"k1"}"#),
            b64(r#"{"sub":"a","exp":5}"#),
            b64("sig")
        );
        let p = parse(&t).unwrap();
        assert_eq!(p.alg, "HS256");
        assert_eq!(p.header_str("kid"), Some("k1"));
        assert_eq!(p.claim_time("exp"), Some(5));
        assert_eq!(p.signature, b"sig");
        assert!(t.starts_with(p.signing_input) && p.signing_input.matches('.').count() == 1);
        assert_eq!(parse("a.b").unwrap_err(), TokenError::Parts);
        assert_eq!(parse("a.b.c.d").unwrap_err(), TokenError::Parts);
        assert_eq!(parse("!!.e30.").unwrap_err(), TokenError::Base64("header"));
        assert_eq!(
            parse(&format!("{}.e30.", b64("[1]"))).unwrap_err(),
            TokenError::Json("header")
        );
        assert_eq!(
            parse(&format!("{}.e30.", b64("{}"))).unwrap_err(),
            TokenError::NoAlg
        );
    }
}
