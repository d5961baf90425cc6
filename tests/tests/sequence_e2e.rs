//! Sequence rules live: the toy bank API on the host, a legitimate user
//! and an attacker in their own namespaces. A `precedence` rule in block
//! mode ("a transfer needs a balance check first") gets the attacker, who
//! replays the transfer request without one, dropped in XDP; the user who
//! checks the balance first keeps being served. Needs root.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use jwtmon_tests::{
    PinDir, bank,
    client::{call, login_from},
    daemon::Daemon,
    http::TestServer,
    netns::{TestNet, in_netns},
};
use serde_json::Value;

const T: Duration = Duration::from_millis(400);

fn token(ns: &str, api: SocketAddr, user: &'static str) -> String {
    in_netns(ns, move || {
        login_from(None, api, "/api/v1/login", user, bank::PASSWORD, T)
    })
    .unwrap()
    .and_then(|(_, body)| serde_json::from_str::<Value>(&body).ok())
    .and_then(|v| v["token"].as_str().map(str::to_string))
    .expect("login")
}

fn get(ns: &str, api: SocketAddr, method: &'static str, path: String, token: &str) -> Option<u16> {
    let auth = format!("Bearer {token}");
    in_netns(ns, move || {
        call(
            None,
            api,
            method,
            &path,
            &[("Authorization", &auth)],
            b"{\"amount\":\"9\"}",
            T,
        )
        .map(|(s, _)| s)
    })
    .unwrap()
}

#[test]
fn a_block_mode_precedence_rule_drops_a_replayed_transfer() {
    let user = TestNet::new().expect("user net");
    let attacker = TestNet::new().expect("attacker net");
    let server = TestServer::serve("0.0.0.0", 0, None, bank::handler()).expect("server");
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("hs.secret");
    std::fs::write(&secret, bank::SECRET).unwrap();
    let cfg = dir.path().join("jwtmon.toml");
    std::fs::write(
        &cfg,
        format!(
            "[daemon]\nemit = \"findings\"\n[capture]\nports = [{}]\n\
             [[jwt.issuers]]\nissuer = \"{}\"\nalgorithms = [\"HS256\"]\naudiences = [\"{}\"]\n\
             hmac_secret_file = \"{}\"\n\
             [[sequence.rules]]\ntype = \"precedence\"\nname = \"transfer needs a balance check\"\n\
             endpoint = \"POST /api/v1/transferFunds\"\n\
             requires = \"GET /api/v1/accounts/{{id}}/balance\"\nmode = \"block\"\n",
            server.port,
            bank::ISSUER,
            bank::AUDIENCE,
            secret.display()
        ),
    )
    .unwrap();
    let pin = PinDir::new("seq");
    let mut daemon = Daemon::start(
        &pin,
        &[
            "--config",
            cfg.to_str().unwrap(),
            "--iface",
            &user.host_if,
            "--iface",
            &attacker.host_if,
        ],
        2,
    )
    .expect("daemon");
    let at = |net: &TestNet| -> SocketAddr {
        format!("{}:{}", net.host_ip, server.port).parse().unwrap()
    };
    let (u, a) = (at(&user), at(&attacker));

    // The user checks the balance, then transfers, three times over.
    let ut = token(&user.ns, u, "alice");
    for i in 0..3 {
        let b = get(
            &user.ns,
            u,
            "GET",
            format!("/api/v1/accounts/{}/balance", 10 + i),
            &ut,
        );
        assert_eq!(b, Some(200));
        let t = get(&user.ns, u, "POST", "/api/v1/transferFunds".into(), &ut);
        assert_eq!(t, Some(200));
    }

    // The attacker (with a valid token of its own) replays the transfer
    // request without ever checking a balance.
    let at_token = token(&attacker.ns, a, "mallory");
    let start = Instant::now();
    let mut answered = 0;
    let mut dropped = false;
    // Bounded (60 tries, about 1.5 s at most), with room for a loaded
    // machine: this asserts that the attacker is dropped, not how fast.
    for _ in 0..60 {
        if get(
            &attacker.ns,
            a,
            "POST",
            "/api/v1/transferFunds".into(),
            &at_token,
        )
        .is_some()
        {
            answered += 1;
        } else {
            dropped = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(dropped, "the attacker was never dropped");
    assert!((1..=40).contains(&answered), "answered {answered}");
    println!(
        "replayed transfer: {answered} answered, dropped after {:.1} ms",
        start.elapsed().as_secs_f64() * 1e3
    );
    let lines = daemon.json_lines(usize::MAX, Duration::from_secs(2));
    let violation = lines
        .iter()
        .find(|v| v["kind"] == "sequence_rule_violation")
        .unwrap_or_else(|| panic!("no violation: {lines:?}"));
    assert_eq!(violation["src_ip"], attacker.peer_ip.as_str());
    assert_eq!(violation["action"], "block_ip");
    assert_eq!(
        violation["detail"]["rule"],
        "transfer needs a balance check"
    );
    assert!(
        lines
            .iter()
            .any(|v| v["type"] == "block" && v["target"] == attacker.peer_ip.as_str())
    );
    // Nothing about the user, who is still served.
    assert!(
        lines
            .iter()
            .all(|v| v["src_ip"] != user.peer_ip.as_str() && v["target"] != user.peer_ip.as_str()),
        "{lines:?}"
    );
    let b = get(
        &user.ns,
        u,
        "GET",
        "/api/v1/accounts/10/balance".into(),
        &ut,
    );
    assert_eq!(b, Some(200));
}
