//! Executes CLI commands: the edge between the command line and the library
//! (errors become messages with context here).

use std::{
    io::{IsTerminal, Write},
    path::Path,
};

use anyhow::{Context, Result, bail};

mod fleet;
mod incidents;
mod schema;

use serde_json::json;

use crate::{
    cli::{AnalyzeOutput, Cli, Command, FleetAction, OutputFormat, SequencesAction},
    clock,
    config::{Config, LogFormat},
    daemon,
    enforce::{BlockSpec, Maps, datapath, import},
    fleet::Op,
    privacy::Pseudonymizer,
    target::Target,
};

/// Runs the parsed command line.
pub fn execute(cli: Cli) -> Result<()> {
    match &cli.command {
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut cmd, "jwtmon", &mut std::io::stdout());
            return Ok(());
        }
        Command::Man { out } => return write_man_pages(out),
        _ => {}
    }
    let mut config = match &cli.command {
        // check-config reports on its own file, not --config.
        Command::CheckConfig { file } => {
            let config = Config::load(file)?;
            // The same builder as the daemon's: every file the config names
            // (keys, lists, OpenAPI, GeoIP) is read now.
            crate::engine::Engine::from_config(&config, crate::engine::Use::Live)
                .with_context(|| format!("{}", file.display()))?;
            print!("{}", config.to_toml());
            eprintln!("{}: OK", file.display());
            return Ok(());
        }
        _ => Config::load_or_default(cli.config.as_deref())?,
    };
    if let Some(dir) = &cli.pin_dir {
        config.datapath.pin_dir = dir.clone();
    }
    if let Some(format) = cli.log_format {
        config.log.format = format;
    }
    if let Some(dir) = &cli.state_dir {
        config.daemon.state_dir = dir.clone();
    }
    init_logging(&config);
    let pin_dir = config.datapath.pin_dir.clone();
    match cli.command {
        Command::CheckConfig { .. } | Command::Completions { .. } | Command::Man { .. } => {
            unreachable!("handled above")
        }
        Command::Run {
            iface,
            xdp_mode,
            keep_attached,
            emit,
        } => {
            if let Some(emit) = emit {
                config.daemon.emit = emit;
            }
            if !iface.is_empty() {
                config.daemon.interfaces = iface;
            }
            if let Some(mode) = xdp_mode {
                config.datapath.xdp_mode = mode;
            }
            config.daemon.keep_attached |= keep_attached;
            config.validate()?;
            run_daemon(config, cli.config.clone())
        }
        Command::Block {
            target,
            ttl,
            reason,
        } => {
            let target = parse_target(&target)?;
            let ttl = ttl_arg(ttl.as_deref())?;
            let body = json!({ "target": target.to_string(), "reason": reason,
                               "ttl": ttl.map(|t| format!("{}s", t.as_secs())) });
            let replaced =
                if let Some(v) = incidents::api(&config, "POST", "/v1/blocks", Some(body))? {
                    v["replaced"].as_bool().unwrap_or(false)
                } else {
                    let replaced = open(&pin_dir)?.block(&BlockSpec {
                        target,
                        ttl,
                        reason: reason.clone(),
                        origin: jwtmon_common::origin::OPERATOR as u16,
                    })?;
                    fleet::share(&config, Op::Block, &target, &reason, ttl);
                    replaced
                };
            let life = ttl.map_or("permanently".to_string(), |t| {
                format!("for {}", clock::fmt_duration(t))
            });
            println!(
                "{} {target} {life}",
                if replaced { "re-blocked" } else { "blocked" }
            );
            Ok(())
        }
        Command::Unblock { target } => edit(&config, &target, Edit::Unblock),
        Command::Allow { target } => edit(&config, &target, Edit::Allow),
        Command::Unallow { target } => edit(&config, &target, Edit::Unallow),
        Command::Fleet {
            action: FleetAction::Status { json },
        } => fleet::status(&config, json),
        Command::Incidents { action } => incidents::incidents(&config, action),
        Command::Report { from, to, format } => {
            incidents::report(&config, &from, to.as_deref(), format)
        }
        Command::Revoke {
            token_id,
            api_key_id,
        } => incidents::revoke(
            &config,
            token_id.or(api_key_id).as_deref().unwrap_or(""),
            false,
        ),
        Command::Unrevoke {
            token_id,
            api_key_id,
        } => incidents::revoke(
            &config,
            token_id.or(api_key_id).as_deref().unwrap_or(""),
            true,
        ),
        Command::Analyze {
            pcap,
            format,
            output: AnalyzeOutput::Observations,
        } => analyze(&config, &pcap, format),
        Command::Analyze { pcap, format, .. } => analyze_findings(&config, &pcap, format),
        Command::Schema { action } => schema::execute(&config, &action),
        Command::Sequences {
            action: Some(SequencesAction::Suggest { pcap, max }),
            ..
        } => suggest(&config, &pcap, max),
        Command::Sequences {
            pcap,
            top,
            min_n,
            format,
            ..
        } => sequences(&config, pcap.as_deref(), top, min_n, format),
        Command::List { json } => list(&open(&pin_dir)?, json),
        Command::Stats { json, top } => stats(&open(&pin_dir)?, json, top),
        Command::ImportBlocklist {
            file,
            ttl,
            reason,
            json,
        } => {
            let ttl = ttl_arg(ttl.as_deref())?;
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let report = import::import(&mut open(&pin_dir)?, &text, ttl, &reason)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "{}: {} added, {} updated, {} invalid, {} covered by the allowlist",
                    file.display(),
                    report.added,
                    report.updated,
                    report.invalid.len(),
                    report.allowlisted.len()
                );
                for s in report.invalid.iter().chain(&report.allowlisted) {
                    println!("  line {}: {} — {}", s.line, s.text, s.reason);
                }
            }
            if let Some(why) = report.stopped {
                bail!("import stopped early: {why}");
            }
            Ok(())
        }
        Command::Reset { yes } => {
            if !yes {
                bail!(
                    "this deletes every block, allowlist entry and counter under {}; add --yes",
                    pin_dir.display()
                );
            }
            let removed = datapath::reset(&pin_dir)?;
            println!(
                "removed {} pinned objects under {}",
                removed.len(),
                pin_dir.display()
            );
            Ok(())
        }
    }
}

/// `--ttl` as given (`None`: permanent).
fn ttl_arg(ttl: Option<&str>) -> Result<Option<std::time::Duration>> {
    Ok(ttl
        .map(clock::parse_ttl)
        .transpose()
        .map_err(anyhow::Error::msg)?
        .flatten())
}

fn parse_target(s: &str) -> Result<Target> {
    Ok(s.parse::<Target>()?)
}

/// A one-target map edit.
#[derive(Clone, Copy)]
enum Edit {
    Unblock,
    Allow,
    Unallow,
}

/// One edit of the pinned maps, for when no daemon answers.
type MapEdit = fn(&mut Maps, &Target) -> Result<(), crate::enforce::MapsError>;

/// Validates the target first (nothing is opened on bad input), applies one
/// map edit through the running daemon's API (else on the pinned maps)
/// and reports it.
fn edit(config: &Config, target: &str, what: Edit) -> Result<()> {
    let target = parse_target(target)?;
    let t = incidents::q(&target.to_string());
    let (method, path, body, op, done, fleet_op): (_, _, _, MapEdit, _, _) = match what {
        Edit::Unblock => (
            "DELETE",
            format!("/v1/blocks?target={t}"),
            None,
            Maps::unblock,
            "unblocked",
            Op::Unblock,
        ),
        Edit::Allow => (
            "POST",
            "/v1/allowlist".to_string(),
            Some(json!({ "target": target.to_string() })),
            Maps::allow,
            "allowlisted",
            Op::Allow,
        ),
        Edit::Unallow => (
            "DELETE",
            format!("/v1/allowlist?target={t}"),
            None,
            Maps::unallow,
            "removed from the allowlist:",
            Op::Unallow,
        ),
    };
    if incidents::api(config, method, &path, body)?.is_none() {
        op(&mut open(&config.datapath.pin_dir)?, &target)?;
        fleet::share(config, fleet_op, &target, "cli", None);
    }
    println!("{done} {target}");
    Ok(())
}

fn open(pin_dir: &Path) -> Result<Maps> {
    Ok(Maps::open_pinned(pin_dir)?)
}

/// Writes `jwtmon.8` and `jwtmon-COMMAND.8` for every visible command.
fn write_man_pages(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let cmd = <Cli as clap::CommandFactory>::command();
    let page = |cmd: clap::Command, name: &str| -> Result<()> {
        let path = dir.join(format!("{name}.8"));
        let mut out = Vec::new();
        clap_mangen::Man::new(cmd).section("8").render(&mut out)?;
        std::fs::write(&path, out).with_context(|| format!("writing {}", path.display()))
    };
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("jwtmon-{}", sub.get_name());
        page(sub.clone().name(name.clone()), &name)?;
    }
    page(cmd, "jwtmon")
}

fn run_daemon(config: Config, config_path: Option<std::path::PathBuf>) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(daemon::run(
        config,
        config_path,
        daemon::signal_shutdown(),
        |attached| {
            for a in attached {
                println!(
                    "attached to {} (role {}, {} mode{})",
                    a.iface,
                    a.role,
                    a.mode,
                    if a.pinned {
                        ", pinned: stays attached after exit"
                    } else {
                        ""
                    }
                );
            }
        },
    ))?;
    Ok(())
}

fn sequences(
    config: &Config,
    pcap: Option<&Path>,
    top: usize,
    min_n: usize,
    format: OutputFormat,
) -> Result<()> {
    let report = if let Some(path) = pcap {
        let (stages, _) = crate::offline::stream_file(path, config, |_, _| {})?;
        stages.sequences.report(top, min_n.clamp(2, 10))
    } else {
        let Some(file) = &config.sequence.report_file else {
            bail!(
                "no --pcap given and sequence.report_file is not set: give a capture file, \
                 or set report_file so the daemon writes its live report"
            );
        };
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("reading the daemon's sequence report {}", file.display()))?;
        let mut r: crate::sequence::Report =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", file.display()))?;
        r.top.retain(|e| e.n >= min_n);
        r.top.truncate(top);
        r
    };
    let mut out = std::io::stdout().lock();
    if format == OutputFormat::Json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "{} calls in {} sequences, {} endpoints, {} n-grams held ({} evicted; counts short by at most {})",
        report.calls,
        report.sequences,
        report.endpoints,
        report.ngrams,
        report.evicted,
        report.count_error_bound
    )?;
    writeln!(
        out,
        "{:>6} {:>9} {:>7} {:>3}  SEQUENCE",
        "SCORE", "COUNT", "SHARE", "N"
    )?;
    for e in &report.top {
        writeln!(
            out,
            "{:>6.3} {:>9} {:>6.1}% {:>3}  {}",
            e.score,
            e.count,
            e.share_of_sequences * 100.0,
            e.n,
            e.sequence.join(" -> ")
        )?;
    }
    Ok(())
}

fn suggest(config: &Config, pcap: &Path, max: usize) -> Result<()> {
    let (stages, _) = crate::offline::stream_file(pcap, config, |_, _| {})?;
    let rules = stages.sequences.suggest(max);
    if rules.is_empty() {
        println!(
            "# no precedence rule to suggest: no high-scoring sequence ends in POST/PUT/PATCH/DELETE"
        );
    }
    for (rule, why) in rules {
        println!(
            "# score {:.3}, seen {} times, in {:.1}% of sequences: {}",
            why.score,
            why.count,
            why.share_of_sequences * 100.0,
            why.sequence.join(" -> ")
        );
        let mut doc = toml::Table::new();
        doc.insert(
            "sequence".into(),
            toml::Value::Table(toml::Table::from_iter([(
                "rules".to_string(),
                toml::Value::try_from(vec![rule])?,
            )])),
        );
        println!("{}", toml::to_string(&doc)?);
    }
    Ok(())
}

/// Writes lines to stdout while a stream runs: the first error (a closed
/// pipe) is kept and ends the writing.
struct Lines {
    out: std::io::StdoutLock<'static>,
    failed: Option<std::io::Error>,
}

impl Lines {
    fn new() -> Self {
        Self {
            out: std::io::stdout().lock(),
            failed: None,
        }
    }

    fn line(&mut self, args: std::fmt::Arguments<'_>) {
        if self.failed.is_none()
            && let Err(e) = writeln!(self.out, "{args}")
        {
            self.failed = Some(e);
        }
    }

    fn finish(mut self) -> Result<()> {
        if let Some(e) = self.failed {
            return Err(e).context("writing to stdout");
        }
        self.out.flush().context("writing to stdout")
    }
}

fn analyze_findings(config: &Config, path: &Path, format: OutputFormat) -> Result<()> {
    let privacy = Pseudonymizer::for_stdout(&config.privacy, &config.daemon.state_dir)?;
    let mut out = Lines::new();
    if format == OutputFormat::Table {
        out.line(format_args!(
            "{:<24} {:<24} {:<8} {:<39} {:<16} {:<16} ENDPOINT",
            "TIME", "KIND", "SEVERITY", "CLIENT", "SUBJECT", "TOKEN"
        ));
    }
    let (_, stats) = crate::offline::stream_file(path, config, |_, findings| {
        for f in findings {
            if format == OutputFormat::Json {
                out.line(format_args!("{}", privacy.line(f.to_json())));
                continue;
            }
            let mut subject = f.subject.clone().unwrap_or_else(|| "-".into());
            subject.truncate(16);
            out.line(format_args!(
                "{:<24} {:<24} {:<8} {:<39} {:<16} {:<16} {}",
                humantime::format_rfc3339_millis(f.time).to_string(),
                f.kind,
                f.severity.to_string(),
                privacy.ip(f.src_ip),
                subject,
                f.token_id.as_deref().unwrap_or("-"),
                f.endpoint
            ));
        }
    })?;
    out.finish()?;
    tracing::info!(?stats, "analysis done");
    Ok(())
}

fn analyze(config: &Config, path: &Path, format: OutputFormat) -> Result<()> {
    let privacy = Pseudonymizer::for_stdout(&config.privacy, &config.daemon.state_dir)?;
    let mut out = Lines::new();
    if format == OutputFormat::Table {
        out.line(format_args!(
            "{:<24} {:<39} {:<7} {:<40} {:>6} {:<16}",
            "TIME", "CLIENT", "METHOD", "PATH", "STATUS", "TOKEN"
        ));
    }
    let stats = crate::offline::observe_file(path, &config.capture, |batch| {
        for o in batch {
            if format == OutputFormat::Json {
                out.line(format_args!("{}", privacy.line(o.to_json())));
                continue;
            }
            let status = o.status.map_or("-".to_string(), |s| s.to_string());
            let token = o.request.credentials.as_ref().map_or_else(
                || "-".to_string(),
                super::parse::http::Credentials::token_id,
            );
            let mut path = o.request.path.clone();
            path.truncate(40);
            out.line(format_args!(
                "{:<24} {:<39} {:<7} {:<40} {:>6} {:<16}",
                humantime::format_rfc3339_millis(o.time).to_string(),
                privacy.ip(o.client_ip),
                o.request.method,
                path,
                status,
                token
            ));
        }
    })?;
    out.finish()?;
    tracing::info!(?stats, "analysis done");
    Ok(())
}

fn list(maps: &Maps, json: bool) -> Result<()> {
    let blocks = maps.list_blocks()?;
    let allow = maps.list_allow()?;
    if json {
        let v = serde_json::json!({ "blocks": blocks, "allowlist": allow });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!(
        "{:<42} {:>12} {:>12} {:<9} REASON",
        "BLOCKED", "TTL LEFT", "DROPS", "ORIGIN"
    );
    for b in &blocks {
        let left = match (b.expired, b.remaining_s) {
            (true, _) => "expired".to_string(),
            (false, None) => "permanent".to_string(),
            (false, Some(s)) => clock::fmt_duration(std::time::Duration::from_secs(s)),
        };
        println!(
            "{:<42} {:>12} {:>12} {:<9} {}",
            b.target.to_string(),
            left,
            b.drops,
            b.origin,
            b.reason
        );
    }
    println!("{} blocks", blocks.len());
    println!();
    println!("{:<44} ORIGIN", "ALLOWLISTED");
    for a in &allow {
        println!("{:<44} {}", a.target.to_string(), a.origin);
    }
    Ok(())
}

fn stats(maps: &Maps, json: bool, top: usize) -> Result<()> {
    let totals = maps.totals()?;
    let sources = maps.top_sources(top)?;
    if json {
        let counters: serde_json::Map<String, serde_json::Value> = totals
            .0
            .iter()
            .map(|(k, v)| (k.clone(), (*v).into()))
            .collect();
        let v = serde_json::json!({ "counters": counters, "top_sources": sources });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    for (name, value) in &totals.0 {
        println!("{name:<18} {value:>14}");
    }
    println!();
    println!(
        "{:<40} {:>12} {:>14} {:>10} {:>8}",
        "SOURCE", "PACKETS", "BYTES", "DROPS", "IDLE s"
    );
    for s in &sources {
        println!(
            "{:<40} {:>12} {:>14} {:>10} {:>8}",
            s.addr.to_string(),
            s.packets,
            s.bytes,
            s.drops,
            s.idle_s
        );
    }
    Ok(())
}

/// Sets up tracing on stderr: JSON or text per config, RUST_LOG overrides.
pub fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log.level));
    let json = match config.log.format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}
