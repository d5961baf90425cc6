//! JWTs: strict parsing and the static checks of a token never panic,
//! whatever its header, claims and signature hold.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(t) = jwtmon::jwt::token::parse(text) {
        for claim in ["exp", "nbf", "iat", "sub", "iss", "aud", "jti"] {
            let _ = t.claim_time(claim);
            let _ = t.claim_str(claim);
        }
    }
    let _ = jwtmon::jwt::checks::kid_injection(text);
});
