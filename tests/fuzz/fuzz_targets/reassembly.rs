//! TCP reassembly and the observer: arbitrary frames on every link type,
//! then pairing, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pcap_file::DataLink;

fuzz_target!(|data: &[u8]| {
    let mut r = jwtmon::capture::pcap::Reassembler::default();
    let mut observer =
        jwtmon::observe::Observer::new(&jwtmon::capture::config::CaptureConfig::default());
    let mut segments = Vec::new();
    let mut out = Vec::new();
    // The input is a sequence of frames: [link, len_hi, len_lo, bytes...].
    let mut rest = data;
    let mut t = 0u64;
    while let [link, hi, lo, tail @ ..] = rest {
        let len = (usize::from(*hi) << 8 | usize::from(*lo)).min(tail.len());
        let link = match link % 5 {
            0 => DataLink::ETHERNET,
            1 => DataLink::LINUX_SLL,
            2 => DataLink::LINUX_SLL2,
            3 => DataLink::IPV4,
            _ => DataLink::IPV6,
        };
        t += 1;
        r.packet(
            link,
            std::time::Duration::from_millis(t),
            &tail[..len],
            &mut segments,
        );
        for s in segments.drain(..) {
            observer.push(s, &mut out);
        }
        rest = &tail[len..];
    }
    r.finish(&mut segments);
    for s in segments.drain(..) {
        observer.push(s, &mut out);
    }
    observer.flush(&mut out);
    for o in &out {
        let _ = o.to_json();
    }
});
