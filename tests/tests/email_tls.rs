//! E-mail alerts over TLS against a real SMTP server on loopback that speaks
//! STARTTLS or TLS from the first byte, with a certificate from a private
//! CA the sink is told to trust (`smtp_ca_file`). The password must only
//! ever travel encrypted: an untrusted certificate or a server that does
//! not offer STARTTLS gets neither credentials nor mail.

use std::{
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use jwtmon::{
    alert::{Alert, deliver::Sinks},
    config::Config,
    finding::Severity,
    metrics::Metrics,
};
use jwtmon_tests::{
    TempFile,
    smtp::{Mail, Security, SmtpSink, TestCa},
};

const PASSWORD: &str = "s3cret-over-tls";

fn alert() -> Alert {
    Alert {
        incident_id: 7,
        kind: "jwt_alg_none".into(),
        severity: Severity::Critical,
        source: "px-0123456789abcdef".into(),
        subject: Some("mallory".into()),
        token_id: Some("t-1a2b3c4d".into()),
        endpoint: "GET /api/accounts".into(),
        action: "block_ip".into(),
        ttl_s: Some(3600),
        status: "mitigated".into(),
        evidence: "alg none accepted".into(),
        count: 1,
        incident_count: 1,
        first_seen: SystemTime::now(),
        last_seen: SystemTime::now(),
        follow_up: false,
    }
}

/// Where delivery to `sink` ended: the mails received, the commands the
/// server saw, and the metrics.
struct Outcome {
    mails: Vec<Mail>,
    commands: Vec<String>,
    metrics: Arc<Metrics>,
}

impl Outcome {
    fn sent(&self) -> u64 {
        let sink = vec![("sink", "mail".to_string())];
        self.metrics.alerts_sent.get_or_create(&sink).get()
    }

    fn given_up(&self) -> u64 {
        let why = vec![
            ("sink", "mail".to_string()),
            ("reason", "delivery".to_string()),
        ];
        self.metrics.alerts_failed.get_or_create(&why).get()
    }
}

/// Sends one alert through an e-mail sink configured by `sink_toml` to a
/// server with `security`, and waits until it is sent or given up.
fn deliver(security: Security, sink_toml: &str) -> Outcome {
    let server = SmtpSink::start_with(security).expect("smtp server");
    let env = format!("JWTMON_TEST_SMTP_PW_{}", server.port);
    // SAFETY: set before the runtime starts; each test uses its own name.
    unsafe { std::env::set_var(&env, PASSWORD) };
    let toml = format!(
        "[[alerts.sinks]]\nname = \"mail\"\ntype = \"email\"\nmin_severity = \"high\"\n\
         max_retries = 0\ntimeout = \"5s\"\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {}\n\
         smtp_username = \"jwtmon\"\nsmtp_password_env = \"{env}\"\n\
         from = \"jwtmon <jwtmon@example.com>\"\nto = [\"soc@example.com\"]\n{sink_toml}",
        server.port
    );
    let cfg = Config::from_toml(&toml, None).expect("config");
    let metrics = Arc::new(Metrics::new());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (mut sinks, tasks) = Sinks::start(&cfg.alerts, metrics.clone()).expect("sinks");
        sinks.dispatch(&alert(), Instant::now());
        // Dropping the front lets each task end once its queue is empty.
        drop(sinks);
        for t in tasks {
            tokio::time::timeout(Duration::from_secs(20), t)
                .await
                .expect("delivery ends")
                .unwrap();
        }
    });
    Outcome {
        mails: server.mails.lock().unwrap().clone(),
        commands: server.commands.lock().unwrap().clone(),
        metrics,
    }
}

fn assert_auth_only_encrypted(o: &Outcome) {
    assert!(
        o.commands
            .iter()
            .filter(|c| c.ends_with("AUTH") || c.ends_with("MAIL"))
            .all(|c| c.starts_with("tls ")),
        "credentials and mail only inside TLS: {:?}",
        o.commands
    );
}

#[test]
fn starttls_with_a_private_ca_delivers_and_authenticates_inside_tls() {
    let ca = TestCa::new().unwrap();
    let pem = TempFile::new("smtp-ca", &ca.ca_pem);
    let o = deliver(
        Security::StartTls(ca.server.clone()),
        &format!(
            "smtp_tls = \"starttls\"\nsmtp_ca_file = \"{}\"\n",
            pem.path()
        ),
    );
    assert_eq!(o.mails.len(), 1, "{:?}", o.commands);
    let m = &o.mails[0];
    assert!(m.tls);
    assert_eq!(m.auth.as_deref(), Some(&*format!("jwtmon:{PASSWORD}")));
    assert!(m.data.contains("jwt_alg_none") && m.data.contains("text/html"));
    // Greeting in the clear, the upgrade, then a fresh EHLO inside TLS.
    assert_eq!(
        o.commands[..3],
        ["plain EHLO", "plain STARTTLS", "tls EHLO"]
    );
    assert_auth_only_encrypted(&o);
    assert_eq!(o.sent(), 1);
}

#[test]
fn implicit_tls_delivers_with_every_command_encrypted() {
    let ca = TestCa::new().unwrap();
    let pem = TempFile::new("smtp-ca", &ca.ca_pem);
    let o = deliver(
        Security::Implicit(ca.server.clone()),
        &format!("smtp_tls = \"tls\"\nsmtp_ca_file = \"{}\"\n", pem.path()),
    );
    assert_eq!(o.mails.len(), 1);
    assert!(o.mails[0].tls);
    assert_eq!(
        o.mails[0].auth.as_deref(),
        Some(&*format!("jwtmon:{PASSWORD}"))
    );
    assert!(!o.commands.is_empty());
    assert!(
        o.commands.iter().all(|c| c.starts_with("tls ")),
        "{:?}",
        o.commands
    );
    assert_eq!(o.sent(), 1);
}

#[test]
fn an_untrusted_certificate_gets_no_password_and_the_failure_is_counted() {
    // Without smtp_ca_file only the public web roots are trusted.
    let ca = TestCa::new().unwrap();
    for (security, tls) in [
        (Security::StartTls(ca.server.clone()), "starttls"),
        (Security::Implicit(ca.server.clone()), "tls"),
    ] {
        let o = deliver(security, &format!("smtp_tls = \"{tls}\"\n"));
        assert!(o.mails.is_empty(), "{tls}");
        assert!(
            !o.commands.iter().any(|c| c.ends_with("AUTH")),
            "{tls}: {:?}",
            o.commands
        );
        assert_eq!(o.sent(), 0, "{tls}");
        assert_eq!(o.given_up(), 1, "{tls}");
    }
}

#[test]
fn starttls_is_required_a_server_without_it_gets_no_password() {
    // A downgrade (STARTTLS stripped from EHLO) must not fall back to plain.
    let ca = TestCa::new().unwrap();
    let pem = TempFile::new("smtp-ca", &ca.ca_pem);
    let o = deliver(
        Security::Plain,
        &format!(
            "smtp_tls = \"starttls\"\nsmtp_ca_file = \"{}\"\n",
            pem.path()
        ),
    );
    assert!(o.mails.is_empty());
    assert!(
        o.commands
            .iter()
            .all(|c| !c.ends_with("AUTH") && !c.ends_with("MAIL")),
        "{:?}",
        o.commands
    );
    assert_eq!(o.given_up(), 1);
}

#[test]
fn a_bad_ca_file_is_a_clear_setup_error() {
    let not_pem = TempFile::new("smtp-ca-bad", "not a certificate\n");
    for (tls, ca, want) in [
        ("starttls", not_pem.path(), "no PEM certificate"),
        (
            "tls",
            "/nonexistent/ca.pem",
            "smtp_ca_file /nonexistent/ca.pem",
        ),
    ] {
        let toml = format!(
            "[[alerts.sinks]]\nname = \"mail\"\ntype = \"email\"\nsmtp_host = \"127.0.0.1\"\n\
             smtp_tls = \"{tls}\"\nsmtp_ca_file = \"{ca}\"\nfrom = \"a@example.com\"\n\
             to = [\"b@example.com\"]\n"
        );
        let cfg = Config::from_toml(&toml, None).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let err = rt
            .block_on(async { Sinks::start(&cfg.alerts, Arc::new(Metrics::new())).err() })
            .expect("a setup error");
        assert!(err.to_string().contains(want), "{err}");
    }
    // A CA file without TLS is a config error, not a silent no-op.
    let toml = "[[alerts.sinks]]\nname = \"mail\"\ntype = \"email\"\nsmtp_host = \"relay\"\n\
                smtp_tls = \"none\"\nsmtp_ca_file = \"/etc/ca.pem\"\nfrom = \"a@example.com\"\n\
                to = [\"b@example.com\"]\n";
    let err = Config::from_toml(toml, None).unwrap_err().to_string();
    assert!(err.contains("smtp_ca_file needs smtp_tls"), "{err}");
}
