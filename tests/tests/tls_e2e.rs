//! HTTPS seen without terminating it. A real nginx (Debian's, dynamically
//! linked to OpenSSL 3) terminates TLS with a throwaway certificate on the
//! host end of a veth pair; clients in the namespace speak HTTPS with curl
//! and wrk. jwtmon, with `[capture.tls]` on and no plain-HTTP port
//! monitored, reads the plaintext through its OpenSSL uprobes: an SQLi and
//! an `alg: none` token are reported with the client's own address and
//! `transport: "tls"`, the SQLi sender is then dropped in XDP, ordinary
//! HTTPS raises nothing, an HTTP/2 connection is counted and not parsed,
//! and no probe is left once the daemon stops. Needs root.

use std::time::{Duration, Instant};

use jwtmon_tests::{
    PinDir, TempFile,
    daemon::{Daemon, list_targets, wait_blocked, wait_line},
    metrics::{sample, scrape},
    netns::TestNet,
    nginx::{Cert, Nginx},
};
use serde_json::Value;

/// curl over HTTPS from `src` in the namespace; the body, or `None` when
/// it did not get an answer within `secs`.
fn curl(net: &TestNet, src: &str, url: &str, extra: &[&str], secs: u32) -> Option<String> {
    let max = secs.to_string();
    let mut cmd = vec![
        "curl",
        "-sk",
        "--http1.1",
        "--max-time",
        &max,
        "--interface",
        src,
    ];
    cmd.extend_from_slice(extra);
    cmd.push(url);
    let out = net.exec(&cmd).ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// TLS probes sit on library files for every process: two daemons with
/// TLS capture would each see the other test's traffic (and its
/// programs). The tests of this file take turns.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Names of the loaded kernel programs (15 characters at most).
fn loaded_programs() -> Vec<String> {
    aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .filter_map(|p| p.name_as_str().map(str::to_string))
        .collect()
}

#[test]
fn https_attacks_are_seen_through_openssl_and_their_senders_dropped() {
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let net = TestNet::new().expect("test network");
    let pin = PinDir::new("tls");
    let port = jwtmon_tests::free_port();
    let cert = Cert::generate();
    let nginx = Nginx::start_with(port, "ssl http2", &cert.server_block()).expect("nginx");
    // No plain-HTTP port is monitored: whatever is seen comes from TLS.
    let metrics_port = jwtmon_tests::free_port();
    let cfg = TempFile::new(
        "tls",
        &format!(
            "[daemon]\nemit = \"findings\"\n[capture]\nports = []\nresponse_timeout = \"2s\"\n\
             [capture.tls]\nenabled = true\n\
             [detect.rate]\nceiling_per_s = 0\n[metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n"
        ),
    );
    let mut d =
        Daemon::start(&pin, &["--config", cfg.path(), "--iface", &net.host_if], 1).expect("daemon");
    let tls_metric = |series: &str| sample(&scrape(metrics_port), series);
    let base = format!("https://{}:{port}", net.host_ip);
    let mut seen: Vec<Value> = Vec::new();

    // Ordinary HTTPS first: curl and wrk from the namespace's own address
    // (wrk runs flat out, so the request-rate ceiling is off: a load test
    // is not what this test is about).
    let benign = net.peer_ip.clone();
    for path in [
        "/orders?page=2&sort=date",
        "/users/42/profile",
        "/search?q=o%27brien%20tea",
    ] {
        let body = curl(&net, &benign, &format!("{base}{path}"), &[], 5);
        assert_eq!(body.as_deref(), Some("ok\n"), "{path}");
    }
    let wrk = net
        .exec(&[
            "wrk",
            "-t1",
            "-c4",
            "-d2s",
            "-H",
            "Authorization: Bearer opaque-session-id",
            &format!("{base}/items?page=1"),
        ])
        .expect("wrk");
    assert!(
        wrk.status.success(),
        "{}",
        String::from_utf8_lossy(&wrk.stderr)
    );
    let wrk_out = String::from_utf8_lossy(&wrk.stdout).into_owned();
    let requests: f64 = wrk_out
        .split_whitespace()
        .zip(wrk_out.split_whitespace().skip(1))
        .find_map(|(n, w)| (w == "requests").then(|| n.parse().ok()).flatten())
        .expect("wrk's request count");
    assert!(requests > 100.0, "{wrk_out}");
    // Every request wrk sent was read through OpenSSL, and seen.
    let end = Instant::now() + Duration::from_secs(5);
    while tls_metric("jwtmon_tls_records_total") < requests {
        assert!(
            Instant::now() < end,
            "{} TLS records for {requests} requests",
            tls_metric("jwtmon_tls_records_total")
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // An SQLi over HTTPS from its own address.
    let attacker = net.add_peer_addr(31).expect("address");
    let body = curl(
        &net,
        &attacker,
        &format!("{base}/search?q=%27%20OR%201%3D1--"),
        &[],
        5,
    );
    assert_eq!(body.as_deref(), Some("ok\n"));
    let f = wait_line(&mut d, &mut seen, "SQLi finding", |v| {
        v["type"] == "finding" && v["kind"] == "injection_sqli" && v["src_ip"] == attacker.as_str()
    });
    assert_eq!(f["transport"], "tls", "{f}");
    assert_eq!(f["action"], "block_ip", "{f}");
    wait_blocked(&pin, &attacker);
    // Dropped in XDP: the handshake no longer completes.
    assert_eq!(
        curl(&net, &attacker, &format!("{base}/"), &[], 2),
        None,
        "still answered"
    );

    // alg:none in a bearer token, from another address.
    let forger = net.add_peer_addr(32).expect("address");
    let none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhZG1pbiIsInJvbGUiOiJhZG1pbiJ9.";
    let header = format!("Authorization: Bearer {none}");
    let body = curl(&net, &forger, &format!("{base}/admin"), &["-H", &header], 5);
    assert_eq!(body.as_deref(), Some("ok\n"));
    let f = wait_line(&mut d, &mut seen, "alg:none finding", |v| {
        v["type"] == "finding" && v["kind"] == "jwt_alg_none" && v["src_ip"] == forger.as_str()
    });
    assert_eq!(f["transport"], "tls", "{f}");
    let lines = serde_json::to_string(&seen).unwrap();
    assert!(
        !lines.contains(none.trim_end_matches('.')),
        "the raw token was printed"
    );

    // HTTP/2 is counted, not analysed.
    let h2 = net.add_peer_addr(33).expect("address");
    let out = net
        .exec(&[
            "curl",
            "-sk",
            "--http2",
            "--max-time",
            "5",
            "--interface",
            &h2,
            &format!("{base}/search?q=%27%20OR%201%3D1--"),
        ])
        .expect("curl --http2");
    assert!(out.status.success());
    let end = Instant::now() + Duration::from_secs(5);
    while tls_metric("jwtmon_tls_events_total{event=\"http2_connections\"}") < 1.0 {
        assert!(
            Instant::now() < end,
            "HTTP/2 connection not counted:\n{}",
            scrape(metrics_port)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(tls_metric("jwtmon_tls_libraries") >= 1.0);

    // Nothing against the ordinary client, nor the HTTP/2 one (not parsed).
    seen.extend(d.json_lines(1000, Duration::from_millis(500)));
    for v in seen.iter().filter(|v| v["type"] == "finding") {
        assert_ne!(
            v["src_ip"],
            benign.as_str(),
            "benign HTTPS raised {v}\nwrk: {wrk_out}"
        );
        assert_ne!(v["src_ip"], h2.as_str(), "HTTP/2 was parsed as HTTP/1: {v}");
    }
    assert!(!list_targets(&pin, "blocks").contains(&benign));

    // Stopping takes every probe off.
    assert!(
        loaded_programs()
            .iter()
            .any(|n| n.starts_with("jwtmon_tls"))
    );
    assert!(d.stop(), "daemon stopped cleanly");
    let left: Vec<String> = loaded_programs()
        .into_iter()
        .filter(|n| {
            n.starts_with("jwtmon_tls")
                || n.starts_with("jwtmon_accept")
                || n.starts_with("jwtmon_close")
        })
        .collect();
    assert!(left.is_empty(), "programs left loaded: {left:?}");
    drop(nginx);
}

#[test]
fn a_library_that_appears_later_is_probed_and_a_file_without_openssl_is_reported_once() {
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let net = TestNet::new().expect("test network");
    let pin = PinDir::new("tls-late");
    let cert = Cert::generate();
    // A copy of OpenSSL that no process maps yet and ldconfig does not
    // know: only a rescan can find it.
    let lib_dir = cert.dir().join("lib");
    std::fs::create_dir_all(&lib_dir).unwrap();
    let system = [
        "/lib/x86_64-linux-gnu/libssl.so.3",
        "/usr/lib/x86_64-linux-gnu/libssl.so.3",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
    .expect("Debian's libssl3");
    std::fs::copy(system, lib_dir.join("libssl.so.3")).unwrap();
    let metrics_port = jwtmon_tests::free_port();
    // /bin/true has no SSL_read: reported once, never retried, no crash.
    let cfg = TempFile::new(
        "tls-late",
        &format!(
            "[daemon]\nemit = \"findings\"\n[capture]\nports = []\nresponse_timeout = \"2s\"\n\
             [capture.tls]\nenabled = true\nlibraries = [\"auto\", \"/bin/true\"]\n\
             rescan_interval = \"1s\"\n[metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n"
        ),
    );
    let mut d =
        Daemon::start(&pin, &["--config", cfg.path(), "--iface", &net.host_if], 1).expect("daemon");
    let metric = |series: &str| sample(&scrape(metrics_port), series);
    let failures = "jwtmon_tls_events_total{event=\"attach_failures\"}";
    // The first probe pass can end after the metrics endpoint answers
    // (slowly on a loaded machine); it covers every file, /bin/true too.
    let end = Instant::now() + Duration::from_secs(20);
    while metric(failures) < 1.0 {
        assert!(
            Instant::now() < end,
            "/bin/true's failure was never counted:\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(metric(failures), 1.0);
    let before = metric("jwtmon_tls_libraries");

    // nginx starts after the daemon, on the copy.
    let port = jwtmon_tests::free_port();
    let lib = lib_dir.display().to_string();
    let nginx = Nginx::start_env(
        port,
        "ssl",
        &cert.server_block(),
        &[("LD_LIBRARY_PATH", &lib)],
    )
    .expect("nginx");
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", nginx.pid())).unwrap();
    assert!(
        maps.contains(&format!("{lib}/libssl.so.3")),
        "nginx maps the copy"
    );
    let end = Instant::now() + Duration::from_secs(20);
    while metric("jwtmon_tls_libraries") < before + 1.0 {
        assert!(
            Instant::now() < end,
            "the copy was not probed:\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let attacker = net.add_peer_addr(41).expect("address");
    let url = format!("https://{}:{port}/search?q=%27%20OR%201%3D1--", net.host_ip);
    assert_eq!(curl(&net, &attacker, &url, &[], 5).as_deref(), Some("ok\n"));
    let mut seen = Vec::new();
    let f = wait_line(&mut d, &mut seen, "SQLi finding", |v| {
        v["kind"] == "injection_sqli" && v["src_ip"] == attacker.as_str()
    });
    assert_eq!(f["transport"], "tls", "{f}");
    // Several rescans later: still one failure, logged once.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(metric(failures), 1.0);
    let log = d.stop_with_log();
    assert_eq!(log.matches("TLS probes not attached").count(), 1, "{log}");
    assert!(log.contains("/bin/true"), "{log}");
    drop(nginx);
}
