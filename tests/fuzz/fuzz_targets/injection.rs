//! The injection tokenizers, pattern sets, families and decoders never
//! panic on any value, in any place.
#![no_main]

use jwtmon::detect::{decode, fields::Place, inject};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let value = String::from_utf8_lossy(data);
    let decoded = decode::deep(&value);
    let lower = decoded.to_ascii_lowercase();
    let _ = inject::sqli::detect(&decoded);
    let _ = inject::patterns::detect(&lower, false);
    let _ = inject::patterns::detect(&lower, true);
    for place in [
        Place::Path,
        Place::Query,
        Place::Body,
        Place::Cookie,
        Place::Header,
    ] {
        let _ = inject::families::detect(place, &lower);
        for level in 1..=4 {
            let _ = inject::paranoid::detect(level, place, &lower, Some("api.example"));
        }
    }
    let _ = decode::without_inline_comments(&value);
    for bytes in decode::base64_bytes(&value) {
        let _ = decode::java_serialized(&bytes);
        let _ = decode::printable(&bytes);
    }
});
