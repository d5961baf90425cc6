//! Kernel-program tests: the real XDP program, loaded into the kernel and
//! run on crafted frames with BPF_PROG_TEST_RUN. Needs root.

use std::time::Duration;

use aya::programs::{TestRun, TestRunOptions};
use jwtmon::{
    enforce::DatapathConfig,
    enforce::{BlockSpec, Datapath, Maps, Role},
    target::Target,
};
use jwtmon_tests::frames::Frame;

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;

struct Harness {
    dp: Datapath,
    maps: Maps,
}

impl Harness {
    fn new() -> Self {
        assert!(jwtmon_tests::is_root(), "kernel-program tests need root");
        let cfg = DatapathConfig {
            max_blocked_ips: 8192,
            max_blocked_cidrs: 1024,
            max_allowlist: 64,
            max_tracked_sources: 1024,
            ..DatapathConfig::default()
        };
        // Unpinned: every test gets private, empty maps.
        let mut dp = Datapath::load(&cfg, false).expect("loading the XDP program");
        let maps = dp.take_maps().expect("maps");
        Self { dp, maps }
    }

    fn run(&mut self, frame: &[u8]) -> u32 {
        self.run_as(Role::Both, frame)
    }

    /// Runs the program serving `role`.
    fn run_as(&mut self, role: Role, frame: &[u8]) -> u32 {
        let prog = self.dp.xdp_for(role).expect("xdp program");
        let opts = TestRunOptions {
            data_in: Some(frame),
            ..TestRunOptions::default()
        };
        prog.test_run(opts).expect("BPF_PROG_TEST_RUN").return_value
    }

    fn block(&mut self, target: &str, ttl: Option<Duration>) {
        self.maps
            .block(&BlockSpec {
                target: target.parse().unwrap(),
                ttl,
                reason: "test".into(),
                origin: 0,
            })
            .expect("block");
    }

    fn counter(&self, name: &str) -> u64 {
        self.maps.totals().unwrap().get(name)
    }

    fn drops_of(&self, target: &str) -> u64 {
        let t: Target = target.parse().unwrap();
        self.maps
            .list_blocks()
            .unwrap()
            .into_iter()
            .find(|b| b.target == t)
            .map(|b| b.drops)
            .expect("entry present")
    }
}

#[test]
fn clean_ipv4_and_ipv6_pass_and_are_counted_per_source() {
    let mut h = Harness::new();
    let v4 = Frame::v4("198.51.100.7").build();
    let v6 = Frame::v6("2001:db8:1::7").build();
    for _ in 0..3 {
        assert_eq!(h.run(&v4), XDP_PASS);
    }
    assert_eq!(h.run(&v6), XDP_PASS);
    assert_eq!(h.counter("passed"), 4);
    assert_eq!(h.counter("dropped"), 0);
    let s = h
        .maps
        .source("198.51.100.7".parse().unwrap())
        .expect("source tracked");
    assert_eq!((s.packets, s.bytes, s.drops), (3, 3 * v4.len() as u64, 0));
    let s6 = h
        .maps
        .source("2001:db8:1::7".parse().unwrap())
        .expect("v6 source tracked");
    assert_eq!(s6.packets, 1);
    let top = h.maps.top_sources(1).unwrap();
    assert_eq!(top[0].addr.to_string(), "198.51.100.7");
}

#[test]
fn exact_block_drops_and_counts_on_the_entry() {
    let mut h = Harness::new();
    h.block("203.0.113.9", None);
    h.block("2001:db8::9", None);
    assert_eq!(h.run(&Frame::v4("203.0.113.9").build()), XDP_DROP);
    assert_eq!(h.run(&Frame::v4("203.0.113.9").build()), XDP_DROP);
    assert_eq!(h.run(&Frame::v4("203.0.113.10").build()), XDP_PASS);
    assert_eq!(h.run(&Frame::v6("2001:db8::9").build()), XDP_DROP);
    assert_eq!(h.drops_of("203.0.113.9"), 2);
    assert_eq!(h.drops_of("2001:db8::9"), 1);
    assert_eq!(h.counter("dropped"), 3);
    assert_eq!(h.counter("dropped_exact"), 3);
    assert_eq!(h.counter("passed"), 1);
    let s = h.maps.source("203.0.113.9".parse().unwrap()).unwrap();
    assert_eq!((s.packets, s.drops), (2, 2));
}

#[test]
fn cidr_block_drops_the_whole_range_v4_and_v6() {
    let mut h = Harness::new();
    h.block("198.18.0.0/15", None);
    h.block("2001:db8:bad::/48", None);
    for src in ["198.18.0.1", "198.19.255.254"] {
        assert_eq!(h.run(&Frame::v4(src).build()), XDP_DROP, "{src}");
    }
    assert_eq!(h.run(&Frame::v4("198.20.0.1").build()), XDP_PASS);
    assert_eq!(h.run(&Frame::v6("2001:db8:bad:1::1").build()), XDP_DROP);
    assert_eq!(h.run(&Frame::v6("2001:db8:bae::1").build()), XDP_PASS);
    assert_eq!(h.drops_of("198.18.0.0/15"), 2);
    assert_eq!(h.counter("dropped_cidr"), 3);
}

#[test]
fn allowlist_overrides_exact_and_cidr_blocks() {
    let mut h = Harness::new();
    h.block("192.0.2.0/24", None);
    h.block("192.0.2.50", None);
    h.maps.allow(&"192.0.2.48/29".parse().unwrap()).unwrap();
    assert_eq!(
        h.run(&Frame::v4("192.0.2.50").build()),
        XDP_PASS,
        "exact block, allowlisted"
    );
    assert_eq!(
        h.run(&Frame::v4("192.0.2.49").build()),
        XDP_PASS,
        "cidr block, allowlisted"
    );
    assert_eq!(
        h.run(&Frame::v4("192.0.2.1").build()),
        XDP_DROP,
        "cidr block, not allowlisted"
    );
    assert_eq!(h.counter("allowlisted"), 2);
    // And the maps refuse a block the allowlist fully covers.
    let err = h
        .maps
        .block(&BlockSpec {
            target: "192.0.2.52".parse().unwrap(),
            ttl: None,
            reason: String::new(),
            origin: 0,
        })
        .unwrap_err();
    assert!(err.to_string().contains("192.0.2.48/29"), "{err}");
}

#[test]
fn expired_entries_pass_and_a_broader_live_cidr_still_applies() {
    let mut h = Harness::new();
    h.block("203.0.113.5", Some(Duration::from_secs(1)));
    h.block("10.9.9.0/24", Some(Duration::from_secs(1)));
    h.block("10.9.0.0/16", None);
    h.block("2001:db8:e::/48", Some(Duration::from_secs(1)));
    assert_eq!(h.run(&Frame::v4("203.0.113.5").build()), XDP_DROP);
    assert_eq!(h.run(&Frame::v6("2001:db8:e::1").build()), XDP_DROP);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(h.run(&Frame::v4("203.0.113.5").build()), XDP_PASS);
    assert_eq!(h.run(&Frame::v6("2001:db8:e::1").build()), XDP_PASS);
    // The expired /24 must not hide the permanent /16 around it.
    assert_eq!(h.run(&Frame::v4("10.9.9.9").build()), XDP_DROP);
    assert_eq!(h.drops_of("10.9.0.0/16"), 1);
    assert!(h.counter("expired_match") >= 2);
    // The sweep removes exactly the expired ones.
    let mut removed = h.maps.reap_expired().unwrap();
    removed.sort();
    let want: Vec<Target> = ["203.0.113.5", "10.9.9.0/24", "2001:db8:e::/48"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(removed, want);
    assert_eq!(h.maps.list_blocks().unwrap().len(), 1);
}

#[test]
fn vlan_and_qinq_frames_are_parsed_through() {
    let mut h = Harness::new();
    h.block("203.0.113.77", None);
    h.block("2001:db8::77", None);
    assert_eq!(h.run(&Frame::v4("203.0.113.77").vlan(10).build()), XDP_DROP);
    assert_eq!(
        h.run(&Frame::v4("203.0.113.77").qinq(100).vlan(10).build()),
        XDP_DROP
    );
    assert_eq!(
        h.run(&Frame::v6("2001:db8::77").qinq(100).vlan(10).build()),
        XDP_DROP
    );
    assert_eq!(
        h.run(&Frame::v4("203.0.113.78").qinq(100).vlan(10).build()),
        XDP_PASS
    );
    assert_eq!(h.counter("dropped"), 3);
    assert_eq!(h.counter("parse_error"), 0);
}

#[test]
fn ipv4_options_are_handled_and_bad_headers_fail_open() {
    let mut h = Harness::new();
    h.block("203.0.113.88", None);
    let with_opts = Frame::v4("203.0.113.88").with_ipv4_options(3);
    assert_eq!(h.run(&with_opts.build()), XDP_DROP);
    // IHL 4 (< 20 bytes) and version 5 are malformed: passed and counted,
    // even from a blocked source (fail open).
    assert_eq!(h.run(&with_opts.build_with_ver_ihl(0x44)), XDP_PASS);
    assert_eq!(h.run(&with_opts.build_with_ver_ihl(0x58)), XDP_PASS);
    // IHL 15 claims 60 bytes of header the frame does not have.
    let mut short = Frame::v4("203.0.113.88").build_with_ver_ihl(0x4f);
    short.truncate(14 + 40);
    assert_eq!(h.run(&short), XDP_PASS);
    assert_eq!(h.counter("parse_error"), 3);
}

#[test]
fn truncated_and_non_ip_frames_pass_and_are_counted() {
    let mut h = Harness::new();
    h.block("203.0.113.99", None);
    h.block("2001:db8::99", None);
    let v4 = Frame::v4("203.0.113.99").build();
    let v6 = Frame::v6("2001:db8::99").build();
    // Ethernet header only; cut inside the IPv4 header; cut inside IPv6;
    // a VLAN tag with nothing after it.
    let mut vlan_cut = Frame::v4("203.0.113.99").vlan(5).build();
    vlan_cut.truncate(16);
    for (name, frame) in [
        ("eth only", v4[..14].to_vec()),
        ("v4 cut", v4[..14 + 15].to_vec()),
        ("v6 cut", v6[..14 + 30].to_vec()),
        ("vlan cut", vlan_cut),
    ] {
        assert_eq!(h.run(&frame), XDP_PASS, "{name}");
    }
    assert_eq!(h.counter("parse_error"), 4);
    assert_eq!(h.run(&Frame::arp().build()), XDP_PASS);
    assert_eq!(h.counter("non_ip"), 1);
    assert_eq!(h.counter("dropped"), 0);
    assert_eq!(h.counter("passed"), 5);
}

#[test]
fn a_new_block_overrides_the_cached_clean_verdict_at_once() {
    let mut h = Harness::new();
    let a = Frame::v4("198.51.100.20").build();
    let b = Frame::v6("2001:db8:c::20").build();
    // Several clean packets: both sources are now cached as "matches nothing".
    for _ in 0..3 {
        assert_eq!(h.run(&a), XDP_PASS);
        assert_eq!(h.run(&b), XDP_PASS);
    }
    h.block("198.51.100.20", None);
    assert_eq!(
        h.run(&a),
        XDP_DROP,
        "exact block after cached clean verdict"
    );
    h.block("2001:db8:c::/48", None);
    assert_eq!(h.run(&b), XDP_DROP, "CIDR block after cached clean verdict");
    // Unblocking lets them through again.
    h.maps.unblock(&"198.51.100.20".parse().unwrap()).unwrap();
    assert_eq!(h.run(&a), XDP_PASS);
    let s = h.maps.source("198.51.100.20".parse().unwrap()).unwrap();
    assert_eq!((s.packets, s.drops), (5, 1));
}

#[test]
fn a_cached_drop_ends_at_once_on_unblock_allow_and_unallow() {
    let mut h = Harness::new();
    let a = Frame::v4("198.51.100.30").build();
    h.block("198.51.100.30", None);
    // The first drop fills the source's verdict cache; the rest are
    // answered from it, and the entry's count still shows every one.
    for _ in 0..4 {
        assert_eq!(h.run(&a), XDP_DROP);
    }
    assert_eq!(h.drops_of("198.51.100.30"), 4);
    h.maps.unblock(&"198.51.100.30".parse().unwrap()).unwrap();
    assert_eq!(h.run(&a), XDP_PASS, "unblocked while a drop was cached");
    h.block("198.51.100.0/24", None);
    assert_eq!(h.run(&a), XDP_DROP);
    assert_eq!(h.run(&a), XDP_DROP);
    // The allowlist always wins, also over a cached drop.
    h.maps.allow(&"198.51.100.30".parse().unwrap()).unwrap();
    assert_eq!(h.run(&a), XDP_PASS, "allowed while a drop was cached");
    assert_eq!(h.run(&a), XDP_PASS);
    assert_eq!(h.counter("allowlisted"), 2);
    h.maps.unallow(&"198.51.100.30".parse().unwrap()).unwrap();
    assert_eq!(h.run(&a), XDP_DROP, "unallowed while a pass was cached");
    let s = h.maps.source("198.51.100.30".parse().unwrap()).unwrap();
    assert_eq!((s.packets, s.drops), (10, 7));
    assert_eq!(h.counter("dropped"), 7);
}

#[test]
fn a_cached_drop_never_outlives_its_block() {
    let mut h = Harness::new();
    let a = Frame::v6("2001:db8:d::30").build();
    h.block("2001:db8:d::30", Some(Duration::from_secs(1)));
    let start = std::time::Instant::now();
    let mut drops = 0;
    // Packets all through the block's second, then just after it.
    while start.elapsed() < Duration::from_millis(950) {
        assert_eq!(h.run(&a), XDP_DROP, "at {:?}", start.elapsed());
        drops += 1;
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(1050).saturating_sub(start.elapsed()));
    assert_eq!(h.run(&a), XDP_PASS, "the block has expired");
    assert_eq!(h.counter("dropped"), drops);
}

fn records(ring: &mut aya::maps::RingBuf<aya::maps::MapData>) -> Vec<jwtmon::capture::Record> {
    let mut got = Vec::new();
    while let Some(item) = ring.next() {
        got.push(jwtmon::capture::decode(&item, &jwtmon::capture::Clock::now()).expect("decodes"));
    }
    got
}

/// Every client segment of a monitored connection reaches userspace (a
/// first byte sent alone, a continuation, SYN and FIN without payload),
/// other ports do not, and `sample_rate` picks whole connections.
#[test]
fn client_segments_are_forwarded_into_the_ring_buffer() {
    use jwtmon::capture::RecordKind;
    use jwtmon_common::tcp_flag;
    let mut h = Harness::new();
    let mut ring = h.dp.take_events().expect("ring buffer");
    h.maps
        .set_capture(&jwtmon::capture::config::CaptureConfig::default())
        .expect("capture knobs");
    let src = "198.51.100.30";
    let req = b"POST /login HTTP/1.1\r\nHost: api\r\nContent-Length: 5\r\n\r\nhello";
    h.run(
        &Frame::tcp_v4(src, 8080, 776, b"")
            .with_tcp_flags(0x02)
            .build(),
    );
    h.run(
        &Frame::tcp_v4(src, 8080, 777, b"")
            .with_tcp_flags(0x10)
            .build(),
    ); // bare ACK
    assert_eq!(
        h.run(&Frame::tcp_v4(src, 8080, 777, &req[..1]).build()),
        XDP_PASS
    );
    h.run(&Frame::tcp_v4(src, 8080, 778, &req[1..]).build());
    h.run(
        &Frame::tcp_v4(src, 8080, 777 + req.len() as u32, b"")
            .with_tcp_flags(0x11)
            .build(),
    );
    h.run(&Frame::tcp_v4(src, 22, 1, b"GET / HTTP/1.1\r\n\r\n").build());
    assert_eq!(h.counter("sampled"), 4);
    let got = records(&mut ring);
    assert_eq!(got.len(), 4, "SYN, two data segments, FIN: {got:#?}");
    assert!(got.iter().all(|r| r.kind == RecordKind::Client));
    assert_eq!((got[0].flags, got[0].segment.seq), (tcp_flag::SYN, 776));
    assert_eq!(got[1].segment.data, &req[..1]);
    assert_eq!(got[2].segment.data, &req[1..]);
    assert_eq!(
        (got[2].segment.seq, got[2].segment.payload_len),
        (778, req.len() as u32 - 1)
    );
    assert_eq!(got[3].flags, tcp_flag::FIN);
    assert_eq!(got[1].segment.src.to_string(), "198.51.100.30:40000");

    // What userspace makes of them: the one request, whole.
    let mut asm = jwtmon::capture::live::Assembler::new(Default::default());
    let (mut out, mut findings) = (Vec::new(), Vec::new());
    for r in got {
        asm.push(r, &mut out, &mut findings);
    }
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].data, req);

    // sample_rate 0 switches capture off.
    let mut knobs = jwtmon::capture::config::CaptureConfig {
        sample_rate: 0,
        ..Default::default()
    };
    h.maps.set_capture(&knobs).unwrap();
    h.run(&Frame::tcp_v4(src, 8080, 2000, req).build());
    assert_eq!(h.counter("sampled"), 4);
    // 1 connection in 2: each connection is followed whole or not at all.
    knobs.sample_rate = 2;
    h.maps.set_capture(&knobs).unwrap();
    for port in 0..40u16 {
        for seq in [1, 2] {
            h.run(
                &Frame::tcp_v4(src, 8080, seq, b"x")
                    .from_port(41000 + port)
                    .build(),
            );
        }
    }
    let mut per_flow = std::collections::BTreeMap::<u16, usize>::new();
    for r in records(&mut ring) {
        *per_flow.entry(r.segment.src.port()).or_default() += 1;
    }
    assert!(per_flow.values().all(|n| *n == 2), "{per_flow:?}");
    assert!((8..=32).contains(&per_flow.len()), "{per_flow:?}");
}

/// A segment longer than one record goes out in pieces; what cannot be
/// copied is announced as a hole; a connection over its byte budget for
/// the second is cut and counted (`flow_cut`).
#[test]
fn long_segments_are_copied_in_pieces_and_each_connection_has_a_budget() {
    let mut h = Harness::new();
    let mut ring = h.dp.take_events().expect("ring buffer");
    let knobs = jwtmon::capture::config::CaptureConfig {
        request_bytes: 1024,
        flow_bytes_per_second: 8000,
        ..Default::default()
    };
    h.maps.set_capture(&knobs).unwrap();
    let payload: Vec<u8> = (0..3000u32).map(|i| b'a' + (i % 26) as u8).collect();
    h.run(&Frame::tcp_v4("198.51.100.31", 8080, 100, &payload).build());
    let got = records(&mut ring);
    let pieces: Vec<_> = got
        .iter()
        .map(|r| (r.segment.seq, r.segment.data.len(), r.segment.payload_len))
        .collect();
    assert_eq!(
        pieces,
        [(100, 1024, 1024), (1124, 1024, 1024), (2148, 952, 952)]
    );
    let joined: Vec<u8> = got.iter().flat_map(|r| r.segment.data.clone()).collect();
    assert_eq!(joined, payload);
    // Four pieces at most: the rest of a 3400-byte segment is a hole.
    let knobs = jwtmon::capture::config::CaptureConfig {
        request_bytes: 512,
        flow_bytes_per_second: 8000,
        ..knobs
    };
    h.maps.set_capture(&knobs).unwrap();
    let long = vec![b'b'; 3400];
    h.run(&Frame::tcp_v4("198.51.100.32", 8080, 0, &long).build());
    let got = records(&mut ring);
    assert_eq!(got.len(), 4);
    assert_eq!(
        (
            got[3].segment.seq,
            got[3].segment.data.len(),
            got[3].segment.payload_len
        ),
        (1536, 512, 1864)
    );
    // The budget: 8000 bytes a second for a connection, then cut.
    for i in 0..3u32 {
        h.run(&Frame::tcp_v4("198.51.100.33", 8080, i * 3000, &payload).build());
    }
    assert_eq!(h.counter("flow_cut"), 1);
    assert_eq!(
        records(&mut ring).len(),
        8,
        "two segments of four 512-byte pieces"
    );
}

#[test]
fn an_import_reaches_sources_already_cached_as_clean() {
    let mut h = Harness::new();
    // A bulk list (more than one generation batch) of unrelated entries.
    let bulk: String = (0..5000)
        .map(|i| format!("203.0.{}.{}\n", i / 250, i % 250))
        .collect();
    let report = jwtmon::enforce::import::import(&mut h.maps, &bulk, None, "bulk").unwrap();
    assert_eq!(report.added, 5000);
    // Now the sources are cached as clean at the current generation...
    let a = Frame::v4("198.51.100.40").build();
    let b = Frame::v6("2001:db8:d::40").build();
    for _ in 0..3 {
        assert_eq!(h.run(&a), XDP_PASS);
        assert_eq!(h.run(&b), XDP_PASS);
    }
    // ...and a small import that lists them must reach them at once.
    let list = "198.51.100.40\n2001:db8:d::/48\n";
    let report = jwtmon::enforce::import::import(&mut h.maps, list, None, "test").unwrap();
    assert_eq!(report.added, 2);
    assert_eq!(
        h.run(&a),
        XDP_DROP,
        "imported exact block applies to a cached source"
    );
    assert_eq!(
        h.run(&b),
        XDP_DROP,
        "imported CIDR block applies to a cached source"
    );
}

/// A full block or allow map is an error that names its capacity and the
/// config key that sets it; replacing an entry of a full map still works.
#[test]
fn a_full_map_names_its_cap_and_config_key() {
    assert!(jwtmon_tests::is_root(), "kernel-program tests need root");
    let cfg = DatapathConfig {
        max_blocked_ips: 4,
        max_blocked_cidrs: 2,
        max_allowlist: 2,
        max_tracked_sources: 1024,
        ..DatapathConfig::default()
    };
    let mut dp = Datapath::load(&cfg, false).expect("loading the XDP program");
    let mut maps = dp.take_maps().expect("maps");
    let spec = |t: &str| BlockSpec {
        target: t.parse().unwrap(),
        ttl: Some(Duration::from_mins(1)),
        reason: "test".into(),
        origin: 0,
    };
    for i in 1..=4 {
        maps.block(&spec(&format!("192.0.2.{i}")))
            .expect("room for four");
    }
    let e = maps.block(&spec("192.0.2.5")).unwrap_err().to_string();
    assert!(
        e.contains("exact block map is full (4 entries)")
            && e.contains("`datapath.max_blocked_ips`"),
        "{e}"
    );
    assert!(maps.block(&spec("192.0.2.4")).is_ok(), "replacing fits");
    maps.block(&spec("198.51.100.0/24")).unwrap();
    maps.block(&spec("203.0.113.0/24")).unwrap();
    let e = maps.block(&spec("10.0.0.0/8")).unwrap_err().to_string();
    assert!(
        e.contains("(2 entries)") && e.contains("`datapath.max_blocked_cidrs`"),
        "{e}"
    );
    maps.allow(&"10.1.0.0/16".parse().unwrap()).unwrap();
    maps.allow(&"10.2.0.0/16".parse().unwrap()).unwrap();
    let e = maps
        .allow(&"10.3.0.0/16".parse().unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`datapath.max_allowlist`") && e.contains("jwtmon reset --yes"),
        "{e}"
    );
}

/// Ways past the sampler are closed: a request led by empty lines (RFC
/// 9112 lets servers skip them) and TCP behind IPv6 extension headers are
/// sampled; TCP in IP fragments is counted (`tcp_fragments`), and a later
/// fragment is never taken for a TCP header.
#[test]
fn crlf_led_requests_extension_headers_and_fragments() {
    let mut h = Harness::new();
    let mut ring = h.dp.take_events().expect("ring buffer");
    h.maps
        .set_capture(&jwtmon::capture::config::CaptureConfig::default())
        .expect("capture knobs");
    let req = b"GET /search?q=1 HTTP/1.1\r\nHost: api\r\n\r\n";
    let led = [b"\r\n\r\n".as_slice(), req].concat();
    h.run(&Frame::tcp_v4("198.51.100.40", 8080, 10, &led).build());
    assert_eq!(h.counter("sampled"), 1, "CRLF-led request");
    let v6 = Frame::tcp_v6_ext("2001:db8::40", 8080, &[0, 60], 0, req).build();
    assert_eq!(h.run(&v6), XDP_PASS);
    assert_eq!(
        h.counter("sampled"),
        2,
        "behind hop-by-hop and destination options"
    );
    // Fragments: counted; the first (with the TCP header) is sampled, a
    // later one is not parsed as TCP.
    h.run(
        &Frame::tcp_v4("198.51.100.41", 8080, 20, req)
            .with_ipv4_frag(0x2000)
            .build(),
    );
    h.run(
        &Frame::tcp_v4("198.51.100.41", 8080, 20, b"\0\0\0\0GET / HTTP/1.1\r\n")
            .with_ipv4_frag(3)
            .build(),
    );
    let v6_later = Frame::tcp_v6_ext("2001:db8::41", 8080, &[44], 5, req).build();
    h.run(&v6_later);
    assert_eq!(h.counter("tcp_fragments"), 3);
    assert_eq!(h.counter("sampled"), 3, "only the first IPv4 fragment");
    let records = records(&mut ring);
    assert_eq!(records.len(), 3);
    assert_eq!(
        records[2].kind,
        jwtmon::capture::RecordKind::Fragment,
        "the first fragment is reported, its payload not forwarded"
    );
    assert!(records[2].segment.data.is_empty());
    let got: Vec<_> = records.into_iter().map(|r| r.segment).collect();
    assert_eq!(
        got[0].data, led,
        "the record starts at the payload, CRLFs and all"
    );
    assert_eq!(got[1].data, req);
    assert_eq!(got[1].src.to_string(), "[2001:db8::40]:40000");
    // What the daemon parses from the CRLF-led record is the request.
    let parsed = jwtmon::parse::parse_requests(&got[0].data, true);
    assert_eq!(
        parsed[0].as_ref().map(|r| r.path.as_str()).ok(),
        Some("/search")
    );
}

/// The enforce role's program reads the source address and nothing else;
/// on every frame it must decide and count as role "both" does: blocked,
/// allowlisted and clean sources, VLAN tags, IPv4 options, fragments,
/// truncated and malformed headers, non-IP frames.
#[test]
fn the_enforce_role_decides_and_counts_like_role_both() {
    let frames: Vec<(&str, Vec<u8>)> = vec![
        ("clean v4", Frame::v4("198.51.100.7").build()),
        ("clean v6", Frame::v6("2001:db8:1::7").build()),
        ("blocked v4", Frame::v4("203.0.113.9").build()),
        ("blocked v6", Frame::v6("2001:db8::9").build()),
        ("CIDR v4", Frame::v4("198.18.3.4").build()),
        ("CIDR v6", Frame::v6("2001:db8:eeee::4").build()),
        (
            "allowlisted inside a block",
            Frame::v4("198.18.9.9").build(),
        ),
        (
            "blocked behind a VLAN tag",
            Frame::v4("203.0.113.9").vlan(7).build(),
        ),
        (
            "blocked behind QinQ",
            Frame::v4("203.0.113.9").qinq(7).build(),
        ),
        (
            "blocked with IPv4 options",
            Frame::v4("203.0.113.9").with_ipv4_options(2).build(),
        ),
        (
            "blocked, a later fragment",
            Frame::v4("203.0.113.9").with_ipv4_frag(0x0010).build(),
        ),
        (
            "IPv4 version 6",
            Frame::v4("203.0.113.9").build_with_ver_ihl(0x65),
        ),
        (
            "IPv4 header length 4 words",
            Frame::v4("203.0.113.9").build_with_ver_ihl(0x44),
        ),
        ("ARP", Frame::arp().build()),
        (
            "truncated v4",
            Frame::v4("203.0.113.9").build()[..30].to_vec(),
        ),
        (
            "truncated v6",
            Frame::v6("2001:db8::9").build()[..40].to_vec(),
        ),
        ("Ethernet header only", vec![0u8; 14]),
    ];
    let mut verdicts = Vec::new();
    let mut totals = Vec::new();
    for role in [Role::Both, Role::Enforce] {
        let mut h = Harness::new();
        h.block("203.0.113.9", None);
        h.block("2001:db8::9", None);
        h.block("198.18.0.0/15", None);
        h.block("2001:db8:eeee::/48", None);
        h.maps.allow(&"198.18.9.9".parse().unwrap()).unwrap();
        let seen: Vec<(&str, u32)> = frames
            .iter()
            .map(|(name, f)| (*name, h.run_as(role, f)))
            .collect();
        verdicts.push(seen);
        // The verdict and parse counters: the first seven slots.
        let names = &jwtmon_common::stat::NAMES[..7];
        totals.push(names.iter().map(|c| (*c, h.counter(c))).collect::<Vec<_>>());
    }
    assert_eq!(verdicts[0], verdicts[1], "role both vs. role enforce");
    assert_eq!(totals[0], totals[1], "role both vs. role enforce");
    // And the verdicts are the right ones, not merely equal.
    let dropped: Vec<&str> = verdicts[1]
        .iter()
        .filter(|(_, v)| *v == XDP_DROP)
        .map(|(n, _)| *n)
        .collect();
    assert_eq!(
        dropped,
        [
            "blocked v4",
            "blocked v6",
            "CIDR v4",
            "CIDR v6",
            "blocked behind a VLAN tag",
            "blocked behind QinQ",
            "blocked with IPv4 options",
            "blocked, a later fragment",
        ]
    );
    let counted = |c: &str| totals[1].iter().find(|t| t.0 == c).unwrap().1;
    // ARP and the all-zero header (EtherType 0).
    assert_eq!(counted("non_ip"), 2);
    assert_eq!(counted("parse_error"), 4);
}
