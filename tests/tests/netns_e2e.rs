//! End-to-end through a real interface: a namespace sends ping and TCP/HTTP
//! over a veth pair to the host side, where the real daemon has attached the
//! real XDP program; the CLI blocks and unblocks while traffic flows. Needs
//! root. Every namespace, link and pin is removed on drop.

use std::time::{Duration, Instant};

use jwtmon_tests::{
    PinDir,
    daemon::{Daemon, cli, cli_ok, entry_drops, list_json},
    http::TestServer,
    netns::TestNet,
};

/// Polls `cond` every 100 ms for at most `limit`.
fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn block_unblock_and_cidr_on_live_traffic() {
    let net = TestNet::new().expect("test network");
    let pin = PinDir::new("e2e");
    let server = TestServer::start(&net.host_ip, 0).expect("server");
    let daemon = Daemon::start(&pin, &["--iface", &net.host_if], 1).expect("daemon");
    assert!(
        daemon.stdout[0].contains(&net.host_if) && daemon.stdout[0].contains("mode"),
        "attach report: {:?}",
        daemon.stdout
    );

    // Clean traffic flows.
    assert!(net.ping(), "ping before any block");
    assert_eq!(net.curl(server.port, 3).as_deref(), Some("ok"));

    // Block the peer: ping and TCP are dropped, the entry counts them.
    let out = cli_ok(
        &pin,
        &["block", &net.peer_ip, "--ttl", "10m", "--reason", "e2e"],
    );
    assert!(out.contains("blocked"), "{out}");
    assert!(!net.ping(), "ping must be dropped");
    assert_eq!(net.curl(server.port, 2), None, "TCP must be dropped");
    let drops = entry_drops(&pin, &net.peer_ip).expect("entry listed");
    assert!(drops >= 2, "drops on the entry: {drops}");
    let stats: serde_json::Value =
        serde_json::from_str(&cli_ok(&pin, &["stats", "--json", "--top", "5"])).unwrap();
    assert!(stats["counters"]["dropped"].as_u64().unwrap() >= drops);
    let peer = stats["top_sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["addr"] == net.peer_ip.as_str())
        .expect("peer among top sources");
    assert!(peer["drops"].as_u64().unwrap() >= 2);
    let entry = &list_json(&pin)["blocks"][0];
    assert!(entry["remaining_s"].as_u64().unwrap() > 590);
    assert_eq!(entry["reason"], "e2e");

    // Unblock: flows again.
    cli_ok(&pin, &["unblock", &net.peer_ip]);
    assert!(net.ping(), "ping after unblock");
    assert_eq!(net.curl(server.port, 3).as_deref(), Some("ok"));

    // A CIDR block drops every address in the range.
    let second = net.add_peer_addr(77).unwrap();
    assert!(net.ping_from(&second));
    let cidr = format!("10.231.{}.0/24", net.subnet);
    // The host side's own address is in that /24 too; only traffic *from* the
    // namespace is checked.
    cli_ok(&pin, &["block", &cidr]);
    assert!(!net.ping(), "main address inside the CIDR");
    assert!(!net.ping_from(&second), "second address inside the CIDR");
    assert!(entry_drops(&pin, &cidr).unwrap() >= 2);

    // The allowlist wins over the CIDR block for one address.
    cli_ok(&pin, &["allow", &second]);
    assert!(net.ping_from(&second), "allowlisted address passes");
    assert!(!net.ping(), "the rest of the range stays blocked");
    cli_ok(&pin, &["unallow", &second]);
    cli_ok(&pin, &["unblock", &cidr]);
    assert!(net.ping());

    assert!(daemon.stop(), "clean exit on SIGTERM");
    drop(server);
}

#[test]
fn invalid_cli_input_is_refused_and_writes_nothing() {
    let net = TestNet::new().expect("test network");
    let pin = PinDir::new("badinput");
    let daemon = Daemon::start(&pin, &["--iface", &net.host_if], 1).expect("daemon");
    for args in [
        vec!["block", "999.1.1.1"],
        vec!["block", "10.0.0.0/33"],
        vec!["block", "10.0.0.5/24"],
        vec!["block", "10.0.0.1", "--ttl", "soon"],
        vec!["block", "10.0.0.1", "--ttl", "-5m"],
        vec!["block", "10.0.0.1", "--ttl=-5m"],
        vec!["allow", "not-an-ip"],
        vec!["unblock", "203.0.113.1"],
    ] {
        let out = cli(&pin, &args);
        assert!(!out.status.success(), "{args:?} must fail");
        let err = String::from_utf8_lossy(&out.stderr);
        // Ours start with "jwtmon: error:", clap's argument errors with "error:".
        assert!(
            err.starts_with("jwtmon: error:") || err.starts_with("error:"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(list_json(&pin)["blocks"].as_array().unwrap().len(), 0);
    // Blocking what the allowlist covers is refused with the reason.
    let out = cli(&pin, &["block", "127.0.0.1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("allowlist"));
    assert!(daemon.stop());
}

#[test]
fn import_blocklist_reports_added_invalid_and_allowlisted() {
    let net = TestNet::new().expect("test network");
    let pin = PinDir::new("import");
    let daemon = Daemon::start(&pin, &["--iface", &net.host_if], 1).expect("daemon");
    let list = std::env::temp_dir().join(format!("jwtmon-import-{}.txt", std::process::id()));
    let text = format!(
        "; Spamhaus DROP style\n{peer} ; SBL1\n198.51.100.0/24 ; SBL2\n\n# comment\n999.9.9.9\n127.0.0.5\n2001:db8:dead::/48\n10.0.0.0/33\n",
        peer = net.peer_ip
    );
    std::fs::write(&list, text).unwrap();
    let out = cli_ok(
        &pin,
        &["import-blocklist", list.to_str().unwrap(), "--json"],
    );
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["added"], 3);
    let invalid: Vec<u64> = report["invalid"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["line"].as_u64().unwrap())
        .collect();
    assert_eq!(invalid, [6, 9]);
    assert_eq!(report["allowlisted"][0]["line"], 7);
    assert!(!net.ping(), "imported block on the peer applies");
    std::fs::remove_file(&list).ok();
    assert!(daemon.stop());
}

#[test]
fn keep_attached_survives_kill9_and_expires_on_time_then_is_adopted() {
    let net = TestNet::new().expect("test network");
    let pin = PinDir::new("keep");
    let short = net.add_peer_addr(20).unwrap();
    let daemon =
        Daemon::start(&pin, &["--iface", &net.host_if, "--keep-attached"], 1).expect("daemon");
    assert!(daemon.stdout[0].contains("pinned"), "{:?}", daemon.stdout);
    cli_ok(&pin, &["block", &net.peer_ip]);
    cli_ok(&pin, &["block", &short, "--ttl", "2s"]);
    let blocked_at = Instant::now();
    daemon.kill9();

    // No daemon: the permanent block still drops, the 2 s one lifts on time.
    assert!(!net.ping(), "permanent block enforced without the daemon");
    assert!(!net.ping_from(&short), "2 s block still active");
    let lifted = eventually(Duration::from_secs(6), || net.ping_from(&short));
    let took = blocked_at.elapsed();
    assert!(lifted, "2 s block must lift without the daemon");
    assert!(took >= Duration::from_secs(2), "lifted too early: {took:?}");
    assert!(!net.ping(), "permanent block still enforced");

    // A new daemon adopts the pinned link and maps.
    let daemon = Daemon::start(&pin, &["--iface", &net.host_if], 1).expect("restart");
    assert!(daemon.stdout[0].contains("adopted"), "{:?}", daemon.stdout);
    let before = entry_drops(&pin, &net.peer_ip).unwrap();
    assert!(!net.ping(), "still enforced after adoption");
    assert!(
        entry_drops(&pin, &net.peer_ip).unwrap() > before,
        "the adopted program counts"
    );
    // The sweep of the adopting daemon removes the expired entry.
    assert!(eventually(Duration::from_secs(5), || {
        list_json(&pin)["blocks"].as_array().unwrap().len() == 1
    }));

    // Without --keep-attached this daemon detaches on stop: traffic flows
    // even though the block entry is still in the (pinned) map.
    assert!(daemon.stop());
    assert!(net.ping(), "detached after a plain stop");
    assert!(!jwtmon::enforce::datapath::link_pin_path(&pin.path, &net.host_if).exists());
}
