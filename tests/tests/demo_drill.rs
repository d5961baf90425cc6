//! `cargo xtask demo` is what a new user runs first: the drill itself must
//! pass (every attacker dropped, every legitimate request answered) and
//! leave nothing behind. Needs root.

use std::process::Command;

#[test]
fn the_demo_drill_blocks_every_attacker_and_cleans_up() {
    let netns_before = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_demo"))
        .env("JWTMON_BIN", jwtmon_tests::daemon::jwtmon_bin())
        .output()
        .expect("running the demo");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for kind in [
        "login_bruteforce -> block_ip",
        "jwt_alg_none -> block_ip",
        "injection_sqli -> block_ip",
        "jwt_revoked -> block_ip",
        "revoked: jwt_replay_multi_ip",
        "drill passed",
    ] {
        assert!(text.contains(kind), "missing `{kind}` in:\n{text}");
    }
    let netns_after = Command::new("ip").args(["netns", "list"]).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&netns_before.stdout),
        String::from_utf8_lossy(&netns_after.stdout),
        "the demo left namespaces behind"
    );
}
