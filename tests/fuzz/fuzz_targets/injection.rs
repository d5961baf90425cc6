//! The injection tokenizers and pattern sets never panic on any value.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let value = String::from_utf8_lossy(data);
    let _ = jwtmon::detect::inject::sqli::detect(&value);
    let _ = jwtmon::detect::inject::patterns::detect(&value.to_ascii_lowercase());
});
