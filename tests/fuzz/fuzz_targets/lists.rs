//! The revocation list and blocklist file formats never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = jwtmon::jwt::revocation::RevocationList::parse(&text, "fuzz");
    let _ = jwtmon::enforce::import::parse(&text);
    let _ = text.parse::<jwtmon::target::Target>();
});
