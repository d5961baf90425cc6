//! The admin API of a running daemon: blocks, allowlist, revocations,
//! incidents, stats and sequences over the Unix socket; 4xx with a reason
//! for bad requests; the loopback TCP listener refuses requests without
//! the bearer token; the CLI goes through the API while the daemon runs.
//! Needs root; namespaces, links, pins and state are removed on drop.

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::Duration,
};

use jwtmon::admin::client::call;
use jwtmon_tests::{
    PinDir,
    daemon::{Daemon, cli, cli_ok},
    netns::TestNet,
};
use serde_json::{Value, json};

fn tcp(port: u16, path: &str, token: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: a\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text[9..12].parse().unwrap();
    (status, text)
}

#[test]
fn admin_api_over_socket_and_tcp() {
    let net = TestNet::new().expect("net");
    let pin = PinDir::new("admin");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::create_dir_all(&pin.state).unwrap();
    let token_file = pin.state.join("admin.token");
    std::fs::write(&token_file, "t0ken-for-tests\n").unwrap();
    let revoked = pin.state.join("revoked.txt");
    std::fs::write(&revoked, "").unwrap();
    let cfg = pin.state.join("jwtmon.toml");
    std::fs::write(
        &cfg,
        format!(
            "[admin]\nlisten = \"127.0.0.1:{port}\"\ntoken_file = \"{}\"\n[jwt]\nrevocation_file = \"{}\"\n[metrics]\nlisten = \"\"\n",
            token_file.display(),
            revoked.display()
        ),
    )
    .unwrap();
    let daemon = Daemon::start(
        &pin,
        &["--config", cfg.to_str().unwrap(), "--iface", &net.host_if],
        1,
    )
    .expect("daemon");
    let sock = pin.state.join("admin.sock");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let api = |method: &str, path: &str, body: Option<Value>| {
        call(&sock, method, path, body.as_ref()).unwrap()
    };

    assert_eq!(api("GET", "/v1/health", None).0, 200);
    // Blocks.
    let (s, v) = api(
        "POST",
        "/v1/blocks",
        Some(json!({"target": "198.51.100.0/24", "ttl": "10m", "reason": "scanner"})),
    );
    assert_eq!((s, v["ttl_s"].as_u64()), (201, Some(600)), "{v}");
    let (_, v) = api("GET", "/v1/blocks", None);
    assert!(
        v["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["target"] == "198.51.100.0/24" && b["reason"] == "scanner")
    );
    for (body, want) in [
        (json!({"target": "not-an-ip"}), "not-an-ip"),
        (json!({"target": "10.0.0.0/33"}), "10.0.0.0/33"),
        (json!({"target": "10.0.0.1", "ttl": "soon"}), "invalid TTL"),
        (json!({"ttl": "10m"}), "`target`"),
    ] {
        let (s, v) = api("POST", "/v1/blocks", Some(body));
        assert_eq!(s, 400, "{v}");
        assert!(v["error"].as_str().unwrap().contains(want), "{v}");
    }
    let (s, v) = api("POST", "/v1/blocks", Some(json!({"target": "127.0.0.1"})));
    assert_eq!(s, 409, "the allowlist wins: {v}");
    assert!(v["error"].as_str().unwrap().contains("allowlist"));
    let (s, _) = call(&sock, "POST", "/v1/blocks", None).unwrap();
    assert_eq!(s, 400, "an empty body is not JSON");
    assert_eq!(
        api("DELETE", "/v1/blocks?target=198.51.100.0%2F24", None).0,
        200
    );
    let (s, v) = api("DELETE", "/v1/blocks?target=198.51.100.0%2F24", None);
    assert_eq!(s, 404, "{v}");
    // Allowlist.
    assert_eq!(
        api(
            "POST",
            "/v1/allowlist",
            Some(json!({"target": "192.0.2.10"}))
        )
        .0,
        201
    );
    let (_, v) = api("GET", "/v1/allowlist", None);
    assert!(
        v["allowlist"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["target"] == "192.0.2.10")
    );
    assert_eq!(
        api("DELETE", "/v1/allowlist?target=192.0.2.10", None).0,
        200
    );
    // Revocations, kept in the list file.
    assert_eq!(
        api(
            "POST",
            "/v1/revocations",
            Some(json!({"token_id": "0123456789ABCDEF"}))
        )
        .0,
        201
    );
    assert!(
        std::fs::read_to_string(&revoked)
            .unwrap()
            .contains("token_id 0123456789abcdef")
    );
    assert_eq!(
        api("GET", "/v1/revocations", None).1["token_ids"][0],
        "0123456789abcdef"
    );
    let (s, v) = api(
        "POST",
        "/v1/revocations",
        Some(json!({"token_id": "eyJhbGciOiJub25lIn0.e30."})),
    );
    assert_eq!(s, 400);
    assert!(v["error"].as_str().unwrap().contains("16 hex"));
    assert_eq!(
        api("DELETE", "/v1/revocations?token_id=0123456789abcdef", None).0,
        200
    );
    assert_eq!(
        api("DELETE", "/v1/revocations?token_id=0123456789abcdef", None).0,
        404
    );
    // Reading.
    let (s, v) = api("GET", "/v1/stats", None);
    assert_eq!(s, 200);
    assert!(
        v["kernel"]["passed"].is_u64() && v["pipeline"]["capture"].is_object(),
        "{v}"
    );
    let (s, v) = api("GET", "/v1/sequences?top=5", None);
    assert_eq!(s, 200);
    assert!(v["top"].is_array(), "{v}");
    assert_eq!(api("GET", "/v1/sequences?top=many", None).0, 400);
    let (s, v) = api("GET", "/v1/incidents?since=1h", None);
    assert_eq!(
        (s, v["incidents"].as_array().map(Vec::len)),
        (200, Some(0)),
        "{v}"
    );
    assert_eq!(api("GET", "/v1/incidents?since=whenever", None).0, 400);
    assert_eq!(api("GET", "/v1/incidents/abc", None).0, 400);
    assert_eq!(api("GET", "/v1/incidents/77", None).0, 404);
    assert_eq!(api("GET", "/v1/nothing", None).0, 404);

    // TCP needs the token.
    assert_eq!(tcp(port, "/v1/health", None).0, 401);
    let (s, text) = tcp(port, "/v1/blocks", Some("wrong"));
    assert_eq!(s, 401);
    assert!(
        text.contains("www-authenticate: Bearer") || text.contains("WWW-Authenticate: Bearer"),
        "{text}"
    );
    assert_eq!(tcp(port, "/v1/health", Some("t0ken-for-tests")).0, 200);

    // The CLI goes through the API while the daemon runs...
    cli_ok(
        &pin,
        &["block", "203.0.113.9", "--ttl", "5m", "--reason", "cli"],
    );
    let bad = cli(&pin, &["block", "127.0.0.5"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("allowlist"));
    cli_ok(&pin, &["unblock", "203.0.113.9"]);
    cli_ok(&pin, &["revoke", "fedcba9876543210"]);
    let log = daemon.stop_with_log();
    assert!(
        log.contains("admin API: block added") && log.contains("203.0.113.9"),
        "{log}"
    );
    assert!(log.contains("admin API: block removed"));
    assert!(log.contains("admin API: token revoked"));
    assert!(!sock.exists(), "the socket is removed on exit");
    // ...and falls back to the pinned maps when it does not.
    let out = cli_ok(&pin, &["block", "203.0.113.10", "--ttl", "5m"]);
    assert!(out.contains("blocked 203.0.113.10"));
    assert!(cli_ok(&pin, &["list", "--json"]).contains("203.0.113.10"));
}
