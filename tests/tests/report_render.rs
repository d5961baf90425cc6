//! The HTML incident report, rendered for real: a register with two weeks
//! of incidents, `jwtmon report --format html`, then a screenshot in
//! headless Chromium (Debian's package), checked pixel by pixel for the
//! charts' colours. The screenshot is kept in the temp directory for a
//! human look (its path is printed).

use std::{
    process::Command,
    time::{Duration, SystemTime},
};

use jwtmon::{
    finding::Severity,
    incident::{ActionTaken, Incident, Status, store::Store},
};

fn incident(id: i64, kind: &str, severity: Severity, first: SystemTime) -> Incident {
    Incident {
        id,
        kind: kind.into(),
        severity,
        status: Status::Mitigated,
        first_seen: first,
        last_seen: first,
        detected_at: first + Duration::from_millis(3 + id as u64 % 7),
        mitigated_at: Some(first + Duration::from_millis(5 + id as u64 % 11)),
        closed_at: None,
        source: format!("px-{:016x}", id % 5),
        token_id: None,
        subject: Some(format!("user{}", id % 4)),
        endpoint: "POST /api/v1/login".into(),
        count: 1 + id as u64 % 9,
        decision: "block_ip".into(),
        evidence: String::new(),
        actions: vec![ActionTaken {
            action: "block_ip".into(),
            target: format!("px-{:016x}", id % 5),
            ttl_s: Some(600),
            at: first,
        }],
        notes: Vec::new(),
    }
}

fn rgb(hex: &str) -> [u8; 3] {
    let v = u32::from_str_radix(hex.trim_start_matches('#'), 16).unwrap();
    [(v >> 16) as u8, (v >> 8) as u8, v as u8]
}

#[test]
fn html_report_renders_with_charts() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("incidents.db")).unwrap();
    let now = SystemTime::now();
    let kinds = [
        ("login_bruteforce", Severity::High),
        ("jwt_alg_none", Severity::Critical),
        ("injection_sqli", Severity::High),
        ("jwt_expired", Severity::Medium),
        ("rate_spike_ip", Severity::Low),
    ];
    let mut batch = Vec::new();
    for id in 1..=120i64 {
        let day = (id * 7 % 13) as u64;
        let (kind, sev) = kinds[(id % 5) as usize];
        batch.push(incident(
            id,
            kind,
            sev,
            now - Duration::from_secs(day * 86_400 + 3600),
        ));
    }
    store.upsert(&batch).unwrap();
    drop(store);
    let out = Command::new(jwtmon_tests::daemon::jwtmon_bin())
        .args([
            "--state-dir",
            dir.path().to_str().unwrap(),
            "report",
            "--from",
            "14d",
            "--format",
            "html",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = dir.path().join("report.html");
    std::fs::write(&html, &out.stdout).unwrap();
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(page.contains("<svg") && page.contains("login_bruteforce"));

    let shot = std::env::temp_dir().join(format!("jwtmon-report-{}.png", std::process::id()));
    let chromium = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|c| {
            Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("chromium is installed (cargo xtask setup)");
    let status = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=880,1400",
            &format!("--screenshot={}", shot.display()),
            &format!("file://{}", html.display()),
        ])
        .output()
        .unwrap();
    assert!(
        shot.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    eprintln!("report screenshot: {}", shot.display());

    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (880, 1400));
    let px = info.color_type.samples();
    let count = |c: [u8; 3]| {
        buf[..info.buffer_size()]
            .chunks(px)
            .filter(|p| p[..3].iter().zip(c).all(|(a, b)| a.abs_diff(b) <= 6))
            .count()
    };
    // Trend columns stacked by severity, bars per kind and per severity.
    for (what, colour) in [
        ("critical (trend)", "#d93025"),
        ("high (trend, severity bars)", "#f28b30"),
        ("kind bars", "#1a73e8"),
    ] {
        let n = count(rgb(colour));
        assert!(
            n > 500,
            "{what}: only {n} pixels of {colour}; see {}",
            shot.display()
        );
    }
    let white = count([255, 255, 255]);
    assert!(white < (880 * 1400) * 95 / 100, "the page is nearly blank");
}
