//! `cargo xtask demo`: an incident drill on throw-away namespaces. A toy
//! banking API runs in a "bank" namespace with jwtmon attached to its two
//! links: one to legitimate users, one to an attacker. While the users
//! log in, read balances and transfer funds, a scripted attacker tries a
//! brute-force login, a forged (alg none) token, SQL injection and a
//! stolen token replayed from several addresses. The terminal shows who
//! was blocked, why, and how fast; everything is removed afterwards, also
//! on failure or Ctrl-C of the drill. Needs root.

use std::{
    collections::BTreeMap,
    net::{IpAddr, SocketAddr},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use jwtmon_tests::{
    PinDir, bank,
    client::{alg_none_token, call, login_from},
    daemon::Daemon,
    http::TestServer,
    netns::{Netns, TestNet, in_netns},
};
use serde_json::Value;

const PORT: u16 = 8080;
const TIMEOUT: Duration = Duration::from_millis(300);

/// One attacker address's run.
struct Attack {
    what: &'static str,
    src: IpAddr,
    answered: u32,
    first: Instant,
    dropped: Option<Instant>,
}

/// Sends `send(src, i)` from each of `srcs` at once (one thread each),
/// inside `ns`, until each has had one request not answered or sent `max`.
fn until_dropped(
    ns: &str,
    what: &'static str,
    srcs: Vec<IpAddr>,
    max: u32,
    send: impl Fn(Option<IpAddr>, u32) -> Option<(u16, String)> + Send + Sync + 'static,
) -> Result<Vec<Attack>> {
    let send = Arc::new(send);
    let threads: Vec<_> = srcs
        .into_iter()
        .map(|src| {
            let (ns, send) = (ns.to_string(), send.clone());
            std::thread::spawn(move || {
                in_netns(&ns, move || {
                    let first = Instant::now();
                    let mut run = Attack {
                        what,
                        src,
                        answered: 0,
                        first,
                        dropped: None,
                    };
                    for i in 0..max {
                        let sent = Instant::now();
                        if send(Some(src), i).is_none() {
                            run.dropped = Some(sent);
                            break;
                        }
                        run.answered += 1;
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    run
                })
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|t| {
            t.join()
                .map_err(|_| anyhow::anyhow!("attacker thread panicked"))?
        })
        .collect()
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A legitimate user: logs in, then reads, transfers and searches until
/// `stop`. Counts answers that are not 2xx as failures.
fn user(
    ns: String,
    src: IpAddr,
    name: &'static str,
    api: SocketAddr,
    stop: Arc<AtomicBool>,
    counts: Arc<[AtomicU64; 2]>,
) -> std::thread::JoinHandle<Result<()>> {
    std::thread::spawn(move || {
        in_netns(&ns, move || {
            let count = |ok: bool| counts[usize::from(!ok)].fetch_add(1, Ordering::Relaxed);
            let login = login_from(
                Some(src),
                api,
                "/api/v1/login",
                name,
                bank::PASSWORD,
                TIMEOUT,
            );
            count(login.as_ref().is_some_and(|(s, _)| *s == 200));
            let token = login
                .and_then(|(_, body)| serde_json::from_str::<Value>(&body).ok())
                .and_then(|v| v["token"].as_str().map(str::to_string))
                .unwrap_or_default();
            let auth = bearer(&token);
            let end = Instant::now() + Duration::from_mins(2);
            let mut i = 0u32;
            while !stop.load(Ordering::Relaxed) && Instant::now() < end {
                let (method, path, body) = match i % 4 {
                    0 | 1 => (
                        "GET",
                        format!("/api/v1/accounts/{}/balance", 100 + i % 3),
                        "",
                    ),
                    2 => (
                        "POST",
                        "/api/v1/transferFunds".to_string(),
                        r#"{"to":"NL91ABNA0417164300","amount":"25.00"}"#,
                    ),
                    _ => ("GET", "/api/v1/products?q=red+shoes".to_string(), ""),
                };
                let got = call(
                    Some(src),
                    api,
                    method,
                    &path,
                    &[
                        ("Authorization", &auth),
                        ("Content-Type", "application/json"),
                    ],
                    body.as_bytes(),
                    TIMEOUT,
                );
                count(got.is_some_and(|(s, _)| (200..300).contains(&s)));
                i += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    })
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn main() -> Result<()> {
    if !jwtmon_tests::is_root() {
        bail!("the demo needs root (namespaces, XDP): run `sudo -E cargo xtask demo`");
    }
    let bank_ns = Netns::new("bank")?;
    let users = TestNet::behind(&bank_ns)?;
    let attacker = TestNet::behind(&bank_ns)?;
    let dir = tempfile::tempdir()?;
    let secret = dir.path().join("bank-hs256.secret");
    std::fs::write(&secret, bank::SECRET)?;
    let config = dir.path().join("jwtmon-demo.toml");
    std::fs::write(
        &config,
        format!(
            "[daemon]\nemit = \"findings\"\n[capture]\nports = [{PORT}]\n\
             [[jwt.issuers]]\nissuer = \"{}\"\nalgorithms = [\"HS256\"]\naudiences = [\"{}\"]\n\
             hmac_secret_file = \"{}\"\n\
             [decide.policy]\n# A revoked token still in use: block whoever uses it.\n\
             jwt_revoked = {{ action = \"block_ip\", ttl = \"10m\" }}\n",
            bank::ISSUER,
            bank::AUDIENCE,
            secret.display()
        ),
    )?;
    let _server = in_netns(&bank_ns.name, || {
        TestServer::serve("0.0.0.0", PORT, None, bank::handler())
    })??;
    let pin = PinDir::new("demo");
    let cfg = config.to_str().context("config path")?;
    let mut daemon = Daemon::start_in(
        &bank_ns.name,
        &pin,
        &[
            "--config",
            cfg,
            "--iface",
            &users.host_if,
            "--iface",
            &attacker.host_if,
        ],
        2,
    )?;
    let api: SocketAddr = format!("{}:{PORT}", users.host_ip).parse()?;
    let target: SocketAddr = format!("{}:{PORT}", attacker.host_ip).parse()?;
    println!("== jwtmon demo: incident drill ==");
    println!(
        "toy bank API on port {PORT} in namespace {}; jwtmon attached to {} (users) and {} (attacker)",
        bank_ns.name, users.host_if, attacker.host_if
    );
    println!("config: {}", config.display());
    println!();

    // Legitimate users, for the whole drill.
    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let mut threads = Vec::new();
    for (i, name) in ["alice", "bob", "carol"].into_iter().enumerate() {
        let src = users.add_peer_addr(10 + i as u8)?.parse()?;
        threads.push(user(
            users.ns.clone(),
            src,
            name,
            api,
            stop.clone(),
            counts.clone(),
        ));
    }
    // Dave's token, which the attacker will have stolen.
    let dave: IpAddr = users.add_peer_addr(20)?.parse()?;
    let stolen = in_netns(&users.ns, move || {
        login_from(
            Some(dave),
            api,
            "/api/v1/login",
            "dave",
            bank::PASSWORD,
            TIMEOUT,
        )
    })?
    .and_then(|(_, body)| serde_json::from_str::<Value>(&body).ok())
    .and_then(|v| v["token"].as_str().map(str::to_string))
    .context("dave could not log in")?;
    std::thread::sleep(Duration::from_secs(1));

    let mut src = (10u8..).map(|h| attacker.add_peer_addr(h));
    let mut next = || -> Result<IpAddr> { Ok(src.next().context("addresses")??.parse()?) };
    let ns = attacker.ns.clone();
    let mut attacks = Vec::new();
    println!("attacker: brute-forcing POST /api/v1/login ...");
    attacks.extend(until_dropped(
        &ns,
        "brute-force login",
        vec![next()?],
        60,
        move |src, i| {
            login_from(
                src,
                target,
                "/api/v1/login",
                "admin",
                &format!("guess{i}"),
                TIMEOUT,
            )
        },
    )?);
    println!("attacker: presenting a forged token (alg none) ...");
    let forged = bearer(&alg_none_token("admin"));
    attacks.extend(until_dropped(
        &ns,
        "forged token (alg none)",
        vec![next()?],
        20,
        move |src, _| {
            let h = [("Authorization", forged.as_str())];
            call(
                src,
                target,
                "GET",
                "/api/v1/accounts/1/balance",
                &h,
                b"",
                TIMEOUT,
            )
        },
    )?);
    println!("attacker: SQL injection in a search ...");
    attacks.extend(until_dropped(
        &ns,
        "SQL injection",
        vec![next()?],
        20,
        move |src, _| {
            let path = "/api/v1/products?q=1%27%20OR%20%271%27%3D%271";
            call(src, target, "GET", path, &[], b"", TIMEOUT)
        },
    )?);
    println!("attacker: replaying dave's stolen token from four addresses ...");
    let from = (0..4).map(|_| next()).collect::<Result<Vec<_>>>()?;
    let auth = bearer(&stolen);
    attacks.extend(until_dropped(
        &ns,
        "replayed stolen token",
        from,
        20,
        move |src, i| {
            let h = [("Authorization", auth.as_str())];
            let path = format!("/api/v1/accounts/{}/balance", 200 + i);
            call(src, target, "GET", &path, &h, b"", TIMEOUT)
        },
    )?);
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join()
            .map_err(|_| anyhow::anyhow!("user thread panicked"))??;
    }
    let lines = daemon.json_lines(usize::MAX, Duration::from_secs(2));
    report(&attacks, &lines, &counts);
    println!();
    println!("cleaning up: stopping jwtmon (XDP detached), removing namespaces and files");
    daemon.stop();
    // A drill that did not go as it should fails (exit 1), so it can run
    // in CI and after configuration changes.
    let escaped: Vec<String> = attacks
        .iter()
        .filter(|a| a.dropped.is_none())
        .map(|a| format!("{} from {}", a.what, a.src))
        .collect();
    if !escaped.is_empty() {
        bail!("drill failed: never dropped: {}", escaped.join(", "));
    }
    let failed = counts[1].load(Ordering::Relaxed);
    if failed > 0 {
        bail!("drill failed: legitimate users saw {failed} failed requests");
    }
    println!("drill passed: every attacker dropped, every legitimate request answered");
    Ok(())
}

fn report(attacks: &[Attack], lines: &[Value], counts: &[AtomicU64; 2]) {
    println!();
    println!(
        "{:<24} {:<15} {:>8}  {:>16}  {:<34} {:>7} {:>9} {:>9}",
        "attack",
        "source",
        "answered",
        "first -> dropped",
        "why (finding -> action)",
        "ttl",
        "detect",
        "mitigate"
    );
    for a in attacks {
        let ip = a.src.to_string();
        let block = lines.iter().find(|v| {
            v["type"] == "block" && v["target"].as_str().is_some_and(|t| t.starts_with(&ip))
        });
        let finding = lines.iter().find(|v| {
            v["type"] == "finding" && v["src_ip"] == ip.as_str() && v["action"] == "block_ip"
        });
        let why = finding.map_or_else(
            || "not blocked".into(),
            |f| {
                format!(
                    "{} -> {}",
                    f["kind"].as_str().unwrap_or("?"),
                    f["action"].as_str().unwrap_or("?")
                )
            },
        );
        println!(
            "{:<24} {:<15} {:>8}  {:>16}  {:<34} {:>7} {:>9} {:>9}",
            a.what,
            ip,
            a.answered,
            a.dropped
                .map_or_else(|| "never".into(), |d| ms(d - a.first)),
            why,
            block
                .and_then(|b| b["ttl_s"].as_u64())
                .map(|t| format!("{t} s"))
                .unwrap_or_default(),
            finding
                .and_then(|f| f["detail"]["time_to_detect_ms"].as_u64())
                .map_or_else(|| "-".into(), |t| format!("{t} ms")),
            block
                .and_then(|b| b["time_to_mitigate_ms"].as_f64())
                .map(|t| format!("{t:.1} ms"))
                .unwrap_or_default(),
        );
    }
    for f in lines.iter().filter(|v| v["action"] == "revoke_token") {
        println!(
            "token {} revoked: {} (seen from {} addresses)",
            f["token_id"].as_str().unwrap_or("?"),
            f["kind"].as_str().unwrap_or("?"),
            f["detail"]["distinct_ips"]
        );
    }
    let (ok, bad) = (
        counts[0].load(Ordering::Relaxed),
        counts[1].load(Ordering::Relaxed),
    );
    println!();
    println!(
        "legitimate users (alice, bob, carol, dave's login): {} requests, {ok} answered 2xx, {bad} failed",
        ok + bad
    );
    let mut kinds = BTreeMap::<&str, u32>::new();
    for f in lines.iter().filter(|v| v["type"] == "finding") {
        *kinds.entry(f["kind"].as_str().unwrap_or("?")).or_default() += 1;
    }
    let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
    println!("findings: {}", kinds.join(", "));
    println!(
        "blocks: {}",
        lines.iter().filter(|v| v["type"] == "block").count()
    );
}
