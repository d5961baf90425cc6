//! `systemctl reload jwtmon` (SIGHUP), live: the daemon re-reads its config
//! file; allowlist entries it added come and go with the file, entries
//! from `jwtmon allow` and every block stay, and a file that does not
//! validate is refused while the daemon goes on. Needs root.

use std::time::{Duration, Instant};

use jwtmon_tests::{
    PinDir, TempFile,
    daemon::{Daemon, cli_ok, list_json, list_targets},
    netns::TestNet,
};

/// Polls `check` for up to 5 s.
fn eventually(what: &str, d: &Daemon, check: impl Fn() -> bool) {
    let end = Instant::now() + Duration::from_secs(5);
    while !check() {
        assert!(Instant::now() < end, "{what} did not happen: {}", d.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

const ALLOW: &str = "[allowlist]\nentries = [\"127.0.0.0/8\", \"::1\", \"192.0.2.10\"]\n";

#[test]
fn sighup_reloads_the_allowlist_and_decide_and_keeps_blocks() {
    let net = TestNet::new().expect("test network");
    let pin = PinDir::new("reload");
    let cfg = TempFile::new("reload", ALLOW);
    let d = Daemon::start(
        &pin,
        &[
            "--config",
            cfg.path(),
            "--iface",
            &net.host_if,
            "--emit",
            "none",
        ],
        1,
    )
    .expect("daemon");
    assert!(list_targets(&pin, "allowlist").contains(&"192.0.2.10".to_string()));
    // Never block ourselves: the host's own address is allowlisted at start.
    let own = list_json(&pin)["allowlist"]
        .as_array()
        .expect("allowlist")
        .iter()
        .find(|a| a["target"] == net.host_ip.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("{} not allowlisted: {}", net.host_ip, list_json(&pin)));
    assert_eq!(own["origin"], "auto: own address", "{own}");
    cli_ok(
        &pin,
        &["block", "198.51.100.7", "--ttl", "10m", "--reason", "kept"],
    );
    cli_ok(&pin, &["allow", "192.0.2.99"]);

    // The file changes: one config entry goes, one comes, [decide] changes.
    std::fs::write(
        &cfg.0,
        "[allowlist]\nentries = [\"127.0.0.0/8\", \"::1\", \"192.0.2.20\"]\n[decide]\ndry_run = true\n",
    )
    .unwrap();
    d.signal(libc::SIGHUP);
    eventually("the reload", &d, || {
        d.log().contains("SIGHUP: configuration reloaded")
    });
    let now = list_targets(&pin, "allowlist");
    assert!(now.contains(&"192.0.2.20".to_string()), "{now:?}");
    assert!(!now.contains(&"192.0.2.10".to_string()), "{now:?}");
    assert!(
        now.contains(&"192.0.2.99".to_string()),
        "an operator's allow entry stays: {now:?}"
    );
    assert_eq!(
        list_targets(&pin, "blocks"),
        ["198.51.100.7"],
        "blocks survive a reload"
    );
    let log = d.log();
    let line = log
        .lines()
        .find(|l| l.contains("configuration reloaded"))
        .expect("reload line");
    let v: serde_json::Value = serde_json::from_str(line).expect("JSON log");
    assert_eq!(v["allowlist_added"], 1, "{line}");
    assert_eq!(v["allowlist_removed"], 1, "{line}");
    assert_eq!(
        v["decide"], true,
        "the decision engine took [decide]: {line}"
    );

    // A broken file is refused; the daemon and its state go on.
    std::fs::write(&cfg.0, "[decide]\nttl_factor = \"fast\"\n").unwrap();
    d.signal(libc::SIGHUP);
    eventually("the refusal", &d, || {
        d.log().contains("SIGHUP: reload refused")
    });
    assert!(
        d.log().contains("ttl_factor"),
        "the refusal names the key: {}",
        d.log()
    );
    assert!(list_targets(&pin, "allowlist").contains(&"192.0.2.20".to_string()));
    assert_eq!(list_targets(&pin, "blocks"), ["198.51.100.7"]);
    assert!(d.stop(), "the daemon still runs and stops cleanly");
}
