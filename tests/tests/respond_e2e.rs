//! Respond and report, live: attackers in namespaces hit a real server;
//! the real daemon blocks, opens incidents in a real SQLite file, sends
//! alerts to real webhook and SMTP receivers on loopback (one flaky, one
//! hanging), exports ECS events and serves /metrics, which is scraped
//! during the run. Then the register is read across a restart, and every
//! output is searched for the raw tokens. Needs root; namespaces, links,
//! pins and state are removed on drop.

use std::{
    net::{IpAddr, SocketAddr},
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use jwtmon_tests::{
    PinDir, TempFile,
    client::{alg_none_token, request},
    daemon::{Daemon, cli, cli_ok},
    hooks::Hooks,
    http::TestServer,
    metrics::{sample, scrape},
    netns::{TestNet, in_netns},
    smtp::SmtpSink,
};
use serde_json::Value;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait(limit: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn get(net: &TestNet, port: u16, auth: String) -> Option<u16> {
    let a: SocketAddr = format!("{}:{port}", net.host_ip).parse().unwrap();
    in_netns(&net.ns, move || {
        request(
            a,
            "GET",
            "/api/v1/accounts/7/balance",
            &[("Authorization", &auth)],
            b"",
            Duration::from_millis(400),
        )
    })
    .unwrap()
}

fn incidents(pin: &PinDir) -> Vec<Value> {
    serde_json::from_str(&cli_ok(pin, &["incidents", "list", "--json"])).unwrap()
}

#[test]
fn incidents_alerts_metrics_and_export_live() {
    let flood = TestNet::new().expect("net");
    let forger = TestNet::new().expect("net");
    let pin = PinDir::new("respond");
    let server = TestServer::start("0.0.0.0", 0).expect("server");
    let hooks = Hooks::start().expect("webhook receiver");
    let smtp = SmtpSink::start().expect("smtp receiver");
    let metrics_port = free_port();
    let slack_url = TempFile::new("slack", &hooks.url("/slack"));
    let flaky_url = TempFile::new("flaky", &hooks.url("/flaky"));
    let hang_url = TempFile::new("hang", &hooks.url("/hang"));
    let smtp_pw = TempFile::new("smtp", "s3cret-pw\n");
    let export =
        std::env::temp_dir().join(format!("jwtmon-respond-export-{}.json", std::process::id()));
    let _export_guard = TempFile(export.clone());
    let cfg = TempFile::new(
        "cfg",
        &format!(
            r#"[daemon]
emit = "findings"
[capture]
ports = [{port}]
[metrics]
listen = "127.0.0.1:{metrics_port}"
[export]
target = "file"
path = "{export}"
[alerts]
group_wait = "3s"
repeat_interval = "10m"
[[alerts.sinks]]
name = "slack"
type = "slack"
url_file = "{slack}"
min_severity = "medium"
[[alerts.sinks]]
name = "flaky"
type = "webhook"
url_file = "{flaky}"
min_severity = "critical"
retry_backoff = "200ms"
[[alerts.sinks]]
name = "dead"
type = "webhook"
url_file = "{hang}"
min_severity = "medium"
timeout = "20s"
max_retries = 0
[[alerts.sinks]]
name = "mail"
type = "email"
smtp_host = "127.0.0.1"
smtp_port = {smtp_port}
smtp_tls = "none"
smtp_username = "jwtmon"
smtp_password_file = "{pw}"
from = "jwtmon <jwtmon@example.test>"
to = ["secops@example.test"]
min_severity = "critical"
"#,
            port = server.port,
            export = export.display(),
            slack = slack_url.path(),
            flaky = flaky_url.path(),
            hang = hang_url.path(),
            smtp_port = smtp.port,
            pw = smtp_pw.path(),
        ),
    );
    let args = [
        "--config",
        cfg.path(),
        "--iface",
        &flood.host_if,
        "--iface",
        &forger.host_if,
    ];
    let mut daemon = Daemon::start(&pin, &args, 2).expect("daemon");
    let before = scrape(metrics_port);
    assert_eq!(sample(&before, "jwtmon_packets_dropped_total"), 0.0);

    // 50 malformed tokens from one source: alert-only findings.
    let mut tokens: Vec<String> = (0..50)
        .map(|i| format!("eyJmb28iOiJiYXIifQ.garbage{i}QWxhZGRpbjpvcGVu"))
        .collect();
    for t in &tokens {
        assert_eq!(get(&flood, server.port, format!("Bearer {t}")), Some(200));
    }
    // Their one alert reaches Slack and the dead sink, which now hangs.
    assert!(
        wait(Duration::from_secs(15), || hooks
            .hanging
            .load(Ordering::Relaxed)
            == 1
            && hooks.count("/slack") == 1),
        "slack {} hanging {}: {}",
        hooks.count("/slack"),
        hooks.hanging.load(Ordering::Relaxed),
        daemon.log()
    );

    // A forged token while the dead sink hangs: blocked all the same.
    let forged = alg_none_token("mallory");
    tokens.push(forged.clone());
    let sent_at = Instant::now();
    assert_eq!(
        get(&forger, server.port, format!("Bearer {forged}")),
        Some(200)
    );
    let mut answered = 1;
    let dropped = wait(Duration::from_secs(5), || {
        let got = get(&forger, server.port, format!("Bearer {forged}"));
        answered += u64::from(got.is_some());
        got.is_none()
    });
    assert!(dropped, "the forger was not blocked: {}", daemon.log());
    assert_eq!(
        hooks.hanging.load(Ordering::Relaxed),
        1,
        "the dead sink was still hanging"
    );
    let blocked_in = sent_at.elapsed();

    // Alerts: the forgery goes to Slack, the flaky webhook (retried) and mail.
    assert!(
        wait(Duration::from_secs(20), || hooks.count("/slack") == 2
            && hooks.count("/flaky") == 2
            && !smtp.mails.lock().unwrap().is_empty()),
        "alerts missing: slack {} flaky {} mail {}",
        hooks.count("/slack"),
        hooks.count("/flaky"),
        smtp.mails.lock().unwrap().len()
    );
    let slack = hooks.json("/slack");
    let fields = |m: &Value| -> String { m["blocks"].to_string() };
    let malformed: Vec<&Value> = slack
        .iter()
        .filter(|m| m["text"].as_str().unwrap().contains("jwt_malformed"))
        .collect();
    let forgery: Vec<&Value> = slack
        .iter()
        .filter(|m| m["text"].as_str().unwrap().contains("jwt_alg_none"))
        .collect();
    assert_eq!((malformed.len(), forgery.len()), (1, 1), "{slack:?}");
    assert!(
        fields(malformed[0]).contains("*Count*\\n50"),
        "{}",
        fields(malformed[0])
    );
    assert!(malformed[0]["text"].as_str().unwrap().contains("×50"));
    let f = fields(forgery[0]);
    for want in [
        "CRITICAL jwt_alg_none",
        "*Source*\\npx-",
        "*Subject*\\nmallory",
        "*Action*\\nblocked for 1h",
        "*TTL*\\n1h",
        "*Endpoint*\\nGET /api/v1/accounts/{id}/balance",
        "*Evidence*",
    ] {
        assert!(f.contains(want), "{want} missing in {f}");
    }
    // Every forged request that got through is a finding of the incident
    // (one more if its answer was dropped).
    let count: u64 = f
        .split("*Count*\\n")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        count == answered || count == answered + 1,
        "count {count}, answered {answered}"
    );
    let flaky = hooks.json("/flaky");
    assert_eq!(flaky[1]["alert"]["kind"], "jwt_alg_none");
    let mail = smtp.mails.lock().unwrap()[0].clone();
    assert_eq!(mail.auth.as_deref(), Some("jwtmon:s3cret-pw"));
    assert!(mail.to[0].contains("secops@example.test"));
    assert!(
        mail.data
            .contains("Subject: [jwtmon] CRITICAL jwt_alg_none"),
        "{}",
        mail.data
    );
    assert!(mail.data.contains("text/plain") && mail.data.contains("text/html"));

    // Metrics moved with the traffic.
    let m = scrape(metrics_port);
    assert_eq!(
        sample(
            &m,
            r#"jwtmon_findings_total{kind="jwt_malformed",severity="medium"}"#
        ),
        50.0
    );
    assert!(
        sample(
            &m,
            r#"jwtmon_findings_total{kind="jwt_alg_none",severity="critical"}"#
        ) >= 1.0
    );
    assert_eq!(
        sample(&m, r#"jwtmon_blocks_issued_total{kind="jwt_alg_none"}"#),
        1.0
    );
    assert!(sample(&m, "jwtmon_blocks_active") >= 1.0);
    assert!(sample(&m, "jwtmon_http_samples_total") >= 51.0, "{m}");
    // Each answered request is at least 3 packets in; the drops at least one SYN.
    assert!(sample(&m, "jwtmon_packets_passed_total") >= 51.0 * 3.0);
    assert!(sample(&m, "jwtmon_packets_dropped_total") >= 1.0);
    assert_eq!(sample(&m, r#"jwtmon_alerts_sent_total{sink="slack"}"#), 2.0);
    assert_eq!(sample(&m, r#"jwtmon_alerts_sent_total{sink="flaky"}"#), 1.0);
    assert_eq!(sample(&m, r#"jwtmon_alerts_sent_total{sink="mail"}"#), 1.0);
    let findings = sample(&m, "jwtmon_pipeline_latency_seconds_count");
    assert!(findings >= 51.0, "{m}");

    // The register, across a restart.
    let mut stdout: Vec<Value> = daemon.json_lines(100_000, Duration::from_secs(1));
    let log = daemon.stop_with_log();
    let list = incidents(&pin);
    assert_eq!(list.len(), 2, "{list:?}");
    let forged_inc = list.iter().find(|i| i["kind"] == "jwt_alg_none").unwrap();
    assert_eq!(forged_inc["status"], "mitigated");
    assert_eq!(forged_inc["actions"][0]["action"], "block_ip");
    assert_eq!(forged_inc["actions"][0]["ttl_s"], 3600);
    assert_eq!(forged_inc["subject"], "mallory");
    let flood_inc = list.iter().find(|i| i["kind"] == "jwt_malformed").unwrap();
    assert_eq!(
        (flood_inc["count"].as_u64(), flood_inc["status"].as_str()),
        (Some(50), Some("open"))
    );
    // Pseudonyms: the keyed HMAC of the address under the daemon's key.
    let key = std::fs::read(pin.state.join("pseudonym.key")).unwrap();
    let p = jwtmon::privacy::Pseudonymizer::with_key(&key);
    let ip = |n: &TestNet| n.peer_ip.parse::<IpAddr>().unwrap();
    assert_eq!(forged_inc["source"], p.ip(ip(&forger)));
    assert_eq!(flood_inc["source"], p.ip(ip(&flood)));
    assert_ne!(
        p.ip(ip(&forger)),
        jwtmon::privacy::Pseudonymizer::with_key(b"other").ip(ip(&forger))
    );

    let mut daemon = Daemon::start(&pin, &args, 2).expect("daemon restarts");
    assert_eq!(
        incidents(&pin).len(),
        2,
        "the register survives the restart"
    );
    let id = flood_inc["id"].as_i64().unwrap().to_string();
    let out = cli_ok(&pin, &["incidents", "close", &id, "--note", "test traffic"]);
    assert!(out.contains(&format!("closed incident #{id}")), "{out}");
    let shown = cli_ok(&pin, &["incidents", "show", &id]);
    assert!(
        shown.contains("closed") && shown.contains("test traffic"),
        "{shown}"
    );
    let bad = cli(&pin, &["incidents", "show", "99999"]);
    assert!(!bad.status.success());
    let report = cli_ok(&pin, &["report", "--from", "1d", "--format", "json"]);
    let r: Value = serde_json::from_str(&report).unwrap();
    assert_eq!(r["incidents"], 2);
    assert_eq!(r["blocks"], 1);
    assert_eq!(r["by_kind"]["jwt_malformed"], 1);
    stdout.extend(daemon.json_lines(100_000, Duration::from_secs(1)));
    let log2 = daemon.stop_with_log();
    eprintln!("forger blocked {blocked_in:?} after its first request, dead sink hanging");

    // No raw token anywhere: database, logs, stdout, alerts, mail, export.
    let db = std::fs::read(pin.state.join("incidents.db")).unwrap();
    let db_wal = std::fs::read(pin.state.join("incidents.db-wal")).unwrap_or_default();
    let exported = std::fs::read_to_string(&export).unwrap();
    assert!(exported.lines().count() >= 52, "findings and the block");
    for line in exported.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        assert!(v["ecs"]["version"].is_string() && v["@timestamp"].is_string());
    }
    let alerts: String = hooks
        .hits
        .lock()
        .unwrap()
        .iter()
        .map(|h| h.body.clone())
        .collect();
    let mails: String = smtp
        .mails
        .lock()
        .unwrap()
        .iter()
        .map(|m| m.data.clone())
        .collect();
    let logs = format!("{log}\n{log2}\n{}", Value::Array(stdout));
    let outputs: [(&str, &[u8]); 6] = [
        ("database", &db),
        ("database wal", &db_wal),
        ("logs", logs.as_bytes()),
        ("alerts", alerts.as_bytes()),
        ("mail", mails.as_bytes()),
        ("export", exported.as_bytes()),
    ];
    for (what, bytes) in outputs {
        let text = String::from_utf8_lossy(bytes);
        for t in &tokens {
            assert!(!text.contains(t.as_str()), "a raw token in the {what}");
        }
        if what != "logs" {
            for n in [&forger, &flood] {
                assert!(!text.contains(&n.peer_ip), "a raw address in the {what}");
            }
        }
    }
}
