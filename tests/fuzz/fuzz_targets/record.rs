//! Ring-buffer records from the kernel: decoding never panics, and a
//! sequence of records (the input cut at every 0xff byte) goes through
//! live reassembly and the observer without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let clock = jwtmon::capture::Clock::now();
    let mut asm = jwtmon::capture::live::Assembler::new(Default::default());
    let mut observer =
        jwtmon::observe::Observer::new(&jwtmon::capture::config::CaptureConfig::default());
    let (mut messages, mut findings, mut out) = (Vec::new(), Vec::new(), Vec::new());
    for record in data.split(|b| *b == 0xff) {
        if let Ok(r) = jwtmon::capture::decode(record, &clock) {
            asm.push(r, &mut messages, &mut findings);
        }
    }
    asm.expire(
        std::time::SystemTime::now() + std::time::Duration::from_secs(60),
        &mut messages,
    );
    asm.finish(&mut messages);
    for m in messages {
        observer.push(m, &mut out);
    }
    observer.flush(&mut out);
});
