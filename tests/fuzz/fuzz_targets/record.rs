//! Ring-buffer records from the kernel: decoding never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let clock = jwtmon::capture::Clock::now();
    let _ = jwtmon::capture::decode(data, &clock);
});
