//! Command-line interface: what each command takes and what `--help` says.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::{
    config::{Emit, LogFormat},
    enforce::{InterfaceSpec, XdpMode},
};

/// jwtmon: protects HTTP APIs from the kernel up.
///
/// An XDP program drops banned IPs and CIDRs at wire speed and counts traffic
/// per source; this command runs the daemon that loads it and manages its
/// maps. Blocks live in pinned kernel maps, so `block`, `allow`, `list` and
/// `stats` work whether the daemon runs or not, and blocks survive restarts.
#[derive(Debug, Parser)]
#[command(name = "jwtmon", version, max_term_width = 100, after_help = QUICK_START)]
pub struct Cli {
    /// Configuration file (TOML). Without it the embedded defaults apply;
    /// `jwtmon check-config FILE` shows the effective values.
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "JWTMON_CONFIG",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,

    /// bpffs directory of the pinned maps [default: datapath.pin_dir,
    /// /sys/fs/bpf/jwtmon].
    #[arg(long, global = true, env = "JWTMON_PIN_DIR", value_name = "DIR")]
    pub pin_dir: Option<PathBuf>,

    /// State directory: incident database, pseudonym key, admin socket
    /// [default: daemon.state_dir, /var/lib/jwtmon].
    #[arg(long, global = true, env = "JWTMON_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Log format on stderr [default: log.format, auto].
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,

    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The examples under `jwtmon --help`, shown as written.
pub const QUICK_START: &str = "\
Quick start (as root):
  jwtmon run --iface eth0                  protect eth0 with the embedded defaults
  jwtmon check-config /etc/jwtmon/jwtmon.toml   validate a config, print the effective one
  jwtmon block 203.0.113.7 --ttl 10m --reason \"credential stuffing\"
  jwtmon allow 192.0.2.10                  never dropped, whatever blocks say
  jwtmon list                              blocks, time left, drops
  jwtmon stats --top 10                    counters and busiest sources
  jwtmon analyze --pcap traffic.pcapng --format table   offline, same analysis
  jwtmon incidents list --since 24h        what was decided, and why

As a service: systemctl enable --now jwtmon; `systemctl reload jwtmon` (SIGHUP)
re-reads the allowlist and [decide] from the config without dropping a block.
`jwtmon <command> --help` explains each command.";

const RUN_EXAMPLES: &str = "\
Examples:
  jwtmon run --iface eth0
  jwtmon run --iface eth0:enforce --iface lo:capture --config /etc/jwtmon/jwtmon.toml
  jwtmon run --iface eth0 --keep-attached --emit none";

const BLOCK_EXAMPLES: &str = "\
Examples:
  jwtmon block 203.0.113.7 --ttl 10m --reason \"credential stuffing\"
  jwtmon block 198.51.100.0/24 --reason scanner    a permanent CIDR block
  jwtmon block 2001:db8::/48 --ttl 1d";

const ANALYZE_EXAMPLES: &str = "\
Examples:
  jwtmon analyze --pcap capture.pcap
  jwtmon analyze --pcap capture.pcapng --format table
  jwtmon analyze --pcap capture.pcap --output observations --config /etc/jwtmon/jwtmon.toml";

/// What `jwtmon analyze` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AnalyzeOutput {
    /// One line per finding.
    Findings,
    /// One line per HTTP request.
    Observations,
}

/// `jwtmon sequences` subcommands.
#[derive(Clone, Debug, clap::Subcommand)]
pub enum SequencesAction {
    /// Propose precedence rules (high-scoring sequences that end in a
    /// state-changing call) in `[[sequence.rules]]` syntax.
    Suggest {
        /// The capture file to learn from.
        #[arg(long, value_name = "FILE")]
        pcap: PathBuf,
        /// Most rules proposed.
        #[arg(long, default_value_t = 10)]
        max: usize,
    },
}

/// `jwtmon schema` subcommands.
#[derive(Clone, Debug, clap::Subcommand)]
pub enum SchemaAction {
    /// Learn a model from capture files (in the order given, as one
    /// stream of traffic) and write it. With `learned` set in the config,
    /// learning continues from that model.
    Learn {
        /// A pcap/pcapng capture; repeat for several.
        #[arg(long, value_name = "FILE", required = true)]
        pcap: Vec<PathBuf>,
        /// The model file to write.
        #[arg(long, value_name = "MODEL")]
        out: PathBuf,
    },
    /// Print a model: per endpoint its state (learning, judging,
    /// unmodellable) and its parameters' shapes.
    Show {
        /// The model file.
        model: PathBuf,
        /// The model as JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
}

/// `jwtmon fleet` subcommands.
#[derive(Clone, Debug, clap::Subcommand)]
pub enum FleetAction {
    /// The nodes of the fleet: last heartbeat, blocks in force, the delay
    /// of the latest change it applied from another node (lag), and what
    /// it has queued for Redis; then the fleet's block entries.
    ///
    /// Example: `jwtmon fleet status`, `jwtmon fleet status --json`.
    Status {
        /// One JSON document instead of tables.
        #[arg(long)]
        json: bool,
    },
}

/// `jwtmon incidents` subcommands.
#[derive(Clone, Debug, clap::Subcommand)]
pub enum IncidentsAction {
    /// List incidents, newest first.
    ///
    /// Examples: `jwtmon incidents list --since 24h`,
    /// `jwtmon incidents list --kind login_bruteforce --json`.
    List {
        /// Only incidents first seen since: a duration ago (24h, 7d), a
        /// date (2026-11-01) or an RFC 3339 time.
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
        /// Only this finding kind.
        #[arg(long, value_name = "KIND")]
        kind: Option<String>,
        /// Most incidents listed.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// JSON (one array) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one incident: times, actor, actions with TTLs, notes.
    Show {
        /// Incident id.
        id: i64,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Close an incident with a note (it stops collecting findings; a new
    /// finding from the same source opens a new incident).
    Close {
        /// Incident id.
        id: i64,
        /// Why (kept with the incident).
        #[arg(long, value_name = "TEXT")]
        note: String,
    },
}

/// Report formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// Markdown.
    Md,
    /// JSON.
    Json,
    /// One self-contained HTML page with charts.
    Html,
}

/// Output format of offline analysis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// One JSON object per line.
    Json,
    /// An aligned table.
    Table,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: load and attach XDP, enforce, stop on SIGINT/SIGTERM.
    ///
    /// Prints one line per interface saying how it attached (native, skb, or
    /// adopted from a previous run), then JSON lines per --emit. SIGUSR1
    /// pauses/resumes reading HTTP samples (a drill: watch `jwtmon stats`
    /// count ringbuf_full while traffic keeps flowing). On SIGINT/SIGTERM it detaches cleanly,
    /// unless --keep-attached: then the program stays in the kernel and goes
    /// on enforcing blocks (and expiring them on time) until a new daemon
    /// adopts it.
    #[command(after_help = RUN_EXAMPLES)]
    Run {
        /// Interface as NAME or NAME:ROLE; repeat for several. Roles: both
        /// (default: enforce and capture), enforce (drop only), capture
        /// (sample HTTP only, never drop) [default: daemon.interfaces, else
        /// the default route's interface].
        #[arg(long, short = 'i', value_name = "IFACE[:ROLE]")]
        iface: Vec<InterfaceSpec>,
        /// XDP mode: auto tries native driver mode and falls back to generic.
        #[arg(long, value_enum, value_name = "MODE")]
        xdp_mode: Option<XdpMode>,
        /// Leave XDP attached (pinned) when the daemon stops or crashes.
        #[arg(long)]
        keep_attached: bool,
        /// JSON lines on stdout: observations (each HTTP request with its
        /// response status), findings, or none [default: daemon.emit].
        #[arg(long, value_enum, value_name = "WHAT")]
        emit: Option<Emit>,
    },
    /// Analyse a pcap/pcapng capture offline, through the same parser and
    /// pairing as live capture.
    ///
    /// Link types: Ethernet (with VLAN tags), Linux cooked (SLL, SLL2), raw
    /// IP. TCP is reassembled per direction (out-of-order and retransmitted
    /// segments handled). Prints one observation per HTTP request, with its
    /// response status, stamped with the packet time.
    #[command(after_help = ANALYZE_EXAMPLES)]
    Analyze {
        /// The capture file.
        #[arg(long, value_name = "FILE")]
        pcap: PathBuf,
        /// Output: JSON lines or a table.
        #[arg(long, value_enum, default_value = "json")]
        format: OutputFormat,
        /// What to print: findings (token attacks and anomalies) or every
        /// observed request with its response status.
        #[arg(long, value_enum, default_value = "findings")]
        output: AnalyzeOutput,
    },
    /// API sequences: which calls come in which order per session.
    ///
    /// Lists the top sequences (n-grams of each session's calls) by
    /// correlation score: how much more often the calls occur together and
    /// in this order than their own frequencies predict (1 = only ever
    /// together, 0 = independent). With --pcap, analyses a capture offline;
    /// without it, prints the running daemon's report (sequence.report_file).
    /// `jwtmon sequences suggest --pcap FILE` proposes precedence rules in
    /// config syntax, for review.
    #[command(args_conflicts_with_subcommands = true)]
    Sequences {
        /// The capture file (default: the daemon's live report).
        #[arg(long, value_name = "FILE")]
        pcap: Option<PathBuf>,
        /// How many sequences.
        #[arg(long, default_value_t = 20)]
        top: usize,
        /// Shortest sequence listed (2..=10).
        #[arg(long, default_value_t = 2)]
        min_n: usize,
        /// Table or JSON.
        #[arg(long, value_enum, default_value = "table")]
        format: OutputFormat,
        /// `suggest`: propose rules.
        #[command(subcommand)]
        action: Option<SequencesAction>,
    },
    /// The API schema model ([detect.schema]): learn it from captures, or
    /// look at one.
    ///
    /// The model holds, per endpoint (`METHOD /template`), the parameter
    /// names and the shape of their values (kind, characters, length,
    /// range, small enumerations), learnt only from 2xx answers that raised
    /// no finding; values themselves are never stored (enumerations keep
    /// hashes). The daemon learns live and saves its model under
    /// daemon.state_dir; `learned = "MODEL"` in [detect.schema] starts it
    /// from one of these files.
    ///
    /// Examples: `jwtmon schema learn --pcap monday.pcap --pcap tuesday.pcap
    /// --out /etc/jwtmon/schema-model.json`, `jwtmon schema show
    /// /etc/jwtmon/schema-model.json`.
    Schema {
        /// What to do.
        #[command(subcommand)]
        action: SchemaAction,
    },
    /// The fleet ([fleet] in the config): the nodes sharing one Redis.
    ///
    /// Blocks, unblocks and allows made on any node (decisions, this CLI,
    /// the admin API) reach every node's kernel maps; failed logins and
    /// token addresses are counted fleet-wide.
    Fleet {
        /// status.
        #[command(subcommand)]
        action: FleetAction,
    },
    /// The incident register: list, show and close incidents.
    ///
    /// Reads the daemon's SQLite file (incidents.database under
    /// daemon.state_dir); works whether the daemon runs or not. Sources are
    /// shown pseudonymized unless privacy.pseudonymize = false.
    Incidents {
        /// list, show or close.
        #[command(subcommand)]
        action: IncidentsAction,
    },
    /// Summarize the incidents of a period.
    ///
    /// Incidents per kind and severity, time to detect and to mitigate
    /// (median and p95), top sources, subjects and endpoints, blocks
    /// issued and per-day counts. `--format html` writes one page with
    /// inline SVG charts and no external assets.
    /// Example: `jwtmon report --from 2026-11-01 --to 2026-12-01 --format html > nov.html`.
    Report {
        /// Start (inclusive): a date, RFC 3339 time or a duration ago (30d).
        #[arg(long, value_name = "WHEN", default_value = "30d")]
        from: String,
        /// End (exclusive) [default: now].
        #[arg(long, value_name = "WHEN")]
        to: Option<String>,
        /// md, json or html.
        #[arg(long, value_enum, default_value = "md")]
        format: ReportFormat,
    },
    /// Revoke a token by its token_id (the 16-hex id findings show), or an
    /// API key by its api_key_id: the running daemon reports every later
    /// use as `jwt_revoked` / `api_key_revoked` (and blocks the sender of
    /// a revoked key by policy).
    ///
    /// Examples: `jwtmon revoke 3f2a9c0d1e4b5a67`, `jwtmon revoke
    /// --api-key-id 9b1c2d3e4f5a6b7c`.
    Revoke {
        /// The token_id (never the token itself).
        #[arg(required_unless_present = "api_key_id")]
        token_id: Option<String>,
        /// An API key's id (from an api_key_* finding; never the key).
        #[arg(long, value_name = "ID", conflicts_with = "token_id")]
        api_key_id: Option<String>,
    },
    /// Lift a token_id (or --api-key-id) revocation.
    Unrevoke {
        /// The token_id.
        #[arg(required_unless_present = "api_key_id")]
        token_id: Option<String>,
        /// An API key's id.
        #[arg(long, value_name = "ID", conflicts_with = "token_id")]
        api_key_id: Option<String>,
    },
    /// Validate a config file and print the effective configuration.
    CheckConfig {
        /// The TOML file.
        file: PathBuf,
    },
    /// Drop all traffic from an address or network.
    ///
    /// Blocking what the allowlist covers is refused (the allowlist wins).
    /// Blocking an existing entry again replaces its TTL and reason.
    #[command(after_help = BLOCK_EXAMPLES)]
    Block {
        /// IPv4/IPv6 address or CIDR.
        target: String,
        /// Lifetime, e.g. 90s, 10m, 2h, 7d; `permanent` (the default) never
        /// expires. The kernel lifts the block on time even without the daemon.
        #[arg(long, value_name = "DURATION")]
        ttl: Option<String>,
        /// Why (kept with the entry, 32 bytes).
        #[arg(long, default_value = "manual", value_name = "TEXT")]
        reason: String,
    },
    /// Remove a block entry (exactly as it was added: address or CIDR).
    Unblock {
        /// IPv4/IPv6 address or CIDR.
        target: String,
    },
    /// Never drop an address or network, whatever blocks say.
    Allow {
        /// IPv4/IPv6 address or CIDR.
        target: String,
    },
    /// Remove an allowlist entry.
    Unallow {
        /// IPv4/IPv6 address or CIDR.
        target: String,
    },
    /// List blocks (time left, drops, reason) and allowlist entries.
    List {
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show global counters and the busiest sources.
    Stats {
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
        /// How many top sources (by packets) to show.
        #[arg(long, default_value_t = 10, value_name = "N")]
        top: usize,
    },
    /// Block every address/CIDR in a file (one per line; `#`/`;` comments).
    ///
    /// Loads Spamhaus DROP-style lists as they are. Reports what was added,
    /// which lines were invalid (with line numbers) and which entries the
    /// allowlist covers (skipped).
    ImportBlocklist {
        /// The list file.
        file: PathBuf,
        /// Lifetime of the imported blocks [default: permanent].
        #[arg(long, value_name = "DURATION")]
        ttl: Option<String>,
        /// Reason stored with each entry.
        #[arg(long, default_value = "import", value_name = "TEXT")]
        reason: String,
        /// JSON report.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script.
    ///
    /// bash: `jwtmon completions bash > /etc/bash_completion.d/jwtmon`;
    /// zsh: `jwtmon completions zsh > "${fpath[1]}/_jwtmon"`;
    /// fish: `jwtmon completions fish > ~/.config/fish/completions/jwtmon.fish`.
    /// The Debian package installs all three.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the manual pages (jwtmon.8 and one per command) into DIR.
    #[command(hide = true)]
    Man {
        /// Where the pages go (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Remove all pinned maps and links (blocks, allowlist, counters).
    ///
    /// Needed after changing map capacities in the config. Stop the daemon
    /// first.
    Reset {
        /// Confirm.
        #[arg(long)]
        yes: bool,
    },
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_the_documented_forms() {
        let cli = Cli::try_parse_from([
            "jwtmon",
            "run",
            "-i",
            "eth0",
            "--iface",
            "eth1",
            "--keep-attached",
            "--xdp-mode",
            "skb",
        ])
        .unwrap();
        match cli.command {
            Command::Run {
                iface,
                xdp_mode,
                keep_attached,
                ..
            } => {
                let names: Vec<&str> = iface.iter().map(|i| i.name.as_str()).collect();
                assert_eq!(names, ["eth0", "eth1"]);
                assert_eq!(xdp_mode, Some(XdpMode::Skb));
                assert!(keep_attached);
            }
            other => panic!("{other:?}"),
        }
        let cli = Cli::try_parse_from([
            "jwtmon",
            "--pin-dir",
            "/sys/fs/bpf/x",
            "block",
            "10.0.0.1",
            "--ttl",
            "10m",
        ])
        .unwrap();
        assert_eq!(
            cli.pin_dir.as_deref(),
            Some(std::path::Path::new("/sys/fs/bpf/x"))
        );
        assert!(
            matches!(cli.command, Command::Block { ref ttl, .. } if ttl.as_deref() == Some("10m"))
        );
        let cli = Cli::try_parse_from(["jwtmon", "stats", "--top", "3", "--json"]).unwrap();
        assert!(matches!(cli.command, Command::Stats { json: true, top: 3 }));
    }

    #[test]
    fn rejects_malformed_arguments() {
        for args in [
            vec!["jwtmon", "block"],
            vec!["jwtmon", "run", "--xdp-mode", "turbo"],
            vec!["jwtmon", "stats", "--top", "-1"],
            vec!["jwtmon", "stats", "--top", "ten"],
            vec!["jwtmon", "frobnicate"],
            vec!["jwtmon", "--log-format", "xml", "list"],
        ] {
            assert!(Cli::try_parse_from(&args).is_err(), "{args:?}");
        }
    }

    /// The command line of an example line: up to the first run of two
    /// spaces (the comment), split on spaces outside double quotes.
    fn argv(line: &str) -> Vec<String> {
        let cmd = line.trim().split("  ").next().unwrap_or_default();
        let mut out = vec![String::new()];
        let mut quoted = false;
        for c in cmd.chars() {
            match c {
                '"' => quoted = !quoted,
                ' ' if !quoted => out.push(String::new()),
                c => out.last_mut().expect("one word").push(c),
            }
        }
        out.retain(|w| !w.is_empty());
        out
    }

    #[test]
    fn help_shows_the_examples_as_written_and_each_one_parses() {
        let mut cmd = Cli::command();
        let help = cmd.render_help().to_string();
        for (text, sub) in [
            (QUICK_START, None),
            (RUN_EXAMPLES, Some("run")),
            (BLOCK_EXAMPLES, Some("block")),
            (ANALYZE_EXAMPLES, Some("analyze")),
        ] {
            let shown = match sub {
                None => help.clone(),
                Some(name) => {
                    let mut cmd = Cli::command();
                    let sub = cmd.find_subcommand_mut(name).expect("subcommand");
                    sub.render_help().to_string()
                }
            };
            for line in text.lines() {
                assert!(
                    shown.contains(line),
                    "help lost the line {line:?}:\n{shown}"
                );
                if line.trim_start().starts_with("jwtmon ") && !line.contains('<') {
                    let args = argv(line);
                    Cli::try_parse_from(&args)
                        .unwrap_or_else(|e| panic!("example {args:?} does not parse: {e}"));
                }
            }
        }
    }
}
