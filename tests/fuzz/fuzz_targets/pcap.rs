//! pcap and pcapng files: reading never panics; bad records are counted.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut stats = jwtmon::capture::pcap::PcapStats::default();
    let mut r = jwtmon::capture::pcap::Reassembler::default();
    let mut out = Vec::new();
    let _ = jwtmon::capture::pcap::read_from(
        "fuzz",
        std::io::Cursor::new(data),
        &mut stats,
        |link, ts, frame| {
            r.packet(link, ts, frame, &mut out);
        },
    );
    r.finish(&mut out);
});
