//! A toy banking API for the demo and drills, served by
//! [`crate::http::TestServer`]: log in for an HS256 token, read balances,
//! transfer funds, search products (naively "vulnerable": it answers
//! anything). Tokens are checked the way a careful API would, so forged
//! ones get 401, which is what jwtmon sees in the responses.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Value, json};

use crate::http::{Handler, Req};

/// The bank's token issuer (`iss`).
pub const ISSUER: &str = "https://bank.demo";
/// Its audience (`aud`).
pub const AUDIENCE: &str = "bank-api";
/// The HS256 secret shared with jwtmon's issuer config.
pub const SECRET: &[u8] = b"demo-bank-hs256-secret-do-not-reuse-0123456789";
/// The one password that works (for every user).
pub const PASSWORD: &str = "right";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A token for `sub` as the bank issues it.
pub fn issue(sub: &str, jti: u64) -> String {
    let t = now();
    let claims = json!({ "iss": ISSUER, "aud": AUDIENCE, "sub": sub, "jti": format!("t{jti}"),
                         "iat": t, "exp": t + 3600, "scope": "accounts:read transfers:write" });
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap_or_default()
}

fn valid(req: &Req<'_>) -> bool {
    let Some(token) = req.authorization.and_then(|a| {
        a.strip_prefix("Bearer ")
            .or_else(|| a.strip_prefix("bearer "))
    }) else {
        return false;
    };
    let mut v = Validation::new(Algorithm::HS256);
    v.set_issuer(&[ISSUER]);
    v.set_audience(&[AUDIENCE]);
    jsonwebtoken::decode::<Value>(token, &DecodingKey::from_secret(SECRET), &v).is_ok()
}

/// The API's handler.
pub fn handler() -> Handler {
    let issued = Arc::new(AtomicU64::new(0));
    Arc::new(move |req: &Req<'_>| {
        let path = req.path.split('?').next().unwrap_or("/");
        let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
        match (req.method, segs.as_slice()) {
            ("GET", ["health"]) => (200, "ok".into()),
            ("POST", ["api", "v1", "login"]) => {
                let body: Value = serde_json::from_slice(req.body).unwrap_or(Value::Null);
                match (body["username"].as_str(), body["password"].as_str()) {
                    (Some(user), Some(PASSWORD)) => {
                        let n = issued.fetch_add(1, Ordering::Relaxed);
                        (200, json!({ "token": issue(user, n) }).to_string())
                    }
                    _ => (401, r#"{"error":"invalid credentials"}"#.into()),
                }
            }
            ("GET", ["api", "v1", "accounts", _, "balance"]) if valid(req) => {
                (200, r#"{"balance":"1234.56","currency":"EUR"}"#.into())
            }
            ("POST", ["api", "v1", "transferFunds"]) if valid(req) => {
                (200, r#"{"status":"accepted"}"#.into())
            }
            ("GET", ["api", "v1", "accounts", ..]) | ("POST", ["api", "v1", "transferFunds"]) => {
                (401, r#"{"error":"invalid token"}"#.into())
            }
            ("GET", ["api", "v1", "products"]) => (200, r#"{"products":[]}"#.into()),
            _ => (404, "not found".into()),
        }
    })
}
