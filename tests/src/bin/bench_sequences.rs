//! `cargo xtask bench-sequences [--scale N]`: the sequence engine on one
//! core on a synthetic trace shaped like Cloudflare's published snapshot of
//! one API (one hour, ~88,000 sessions, ~260 million calls, 301
//! endpoints), divided by `--scale` (default 100; `--scale 1` is the full
//! shape). Sessions walk the endpoints as a Markov chain (each endpoint has
//! three likely successors, 80%, else any endpoint), interleaved at random.
//! Prints calls/s next to the trace generator alone in the same run, the
//! real-time factor, and peak memory.

use std::{
    hint::black_box,
    time::{Duration, Instant, SystemTime},
};

use jwtmon::{
    analysis::TokenFacts,
    observe::Observation,
    parse::Request,
    sequence::{Sequencer, config::SequenceConfig},
};

/// The global allocator the daemon uses.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ENDPOINTS: u64 = 301;

fn rng(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

/// Peak resident memory of this process so far, in KiB.
fn peak_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The trace: (session, endpoint) per call.
struct Trace {
    state: u64,
    at: Vec<u16>,
    sessions: u64,
}

impl Trace {
    fn new(sessions: u64) -> Self {
        Self {
            state: 0x2545_f491_4f6c_dd1d,
            at: vec![0; sessions as usize],
            sessions,
        }
    }

    fn next(&mut self) -> (usize, u16) {
        let s = (rng(&mut self.state) % self.sessions) as usize;
        let cur = u64::from(self.at[s]);
        let r = rng(&mut self.state);
        let next = if r % 10 < 8 {
            (cur * 7 + 1 + (r >> 8) % 3) % ENDPOINTS
        } else {
            (r >> 16) % ENDPOINTS
        };
        self.at[s] = next as u16;
        (s, next as u16)
    }
}

fn main() {
    let scale: u64 = std::env::args()
        .skip_while(|a| a != "--scale")
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(100)
        .max(1);
    let sessions = 88_000 / scale;
    let calls = 260_000_000 / scale;
    let hour = Duration::from_hours(1);
    let facts: Vec<TokenFacts> = (0..sessions)
        .map(|s| TokenFacts {
            session: Some(format!("sess-{s:08}")),
            ..TokenFacts::default()
        })
        .collect();
    let mut calls_of: Vec<Observation> = (0..ENDPOINTS)
        .map(|e| Observation {
            time: SystemTime::UNIX_EPOCH,
            src: "10.0.0.2:40000".parse().unwrap(),
            dst: "10.0.0.1:443".parse().unwrap(),
            client_ip: "10.0.0.2".parse().unwrap(),
            attributed: true,
            request: Request {
                method: if e % 5 == 0 { "POST" } else { "GET" }.into(),
                path: format!("/api/v{}/resource{e}/{}", e % 3 + 1, 1000 + e),
                ..Request::default()
            },
            status: Some(200),
            latency: None,
            unanswered: false,
            transport: jwtmon::capture::Transport::Tcp,
        })
        .collect();
    let start = SystemTime::now();
    let step = hour / calls.max(1) as u32;

    // Replays the trace into `f`; returns how long it took.
    let mut replay = |f: &mut dyn FnMut(&Observation, &TokenFacts)| {
        let mut trace = Trace::new(sessions);
        let t = Instant::now();
        for i in 0..calls {
            let (s, e) = trace.next();
            let o = &mut calls_of[usize::from(e)];
            o.time = start + step * i as u32;
            f(o, &facts[s]);
        }
        t.elapsed()
    };
    // Baseline: the generator alone.
    let base = replay(&mut |o, f| {
        black_box((o, f));
    });

    let before = peak_kib();
    let mut seq = Sequencer::new(&SequenceConfig {
        max_sessions: 100_000,
        ..SequenceConfig::default()
    })
    .unwrap();
    let mut out = Vec::new();
    let elapsed = replay(&mut |o, f| {
        seq.observe(o, f, &mut out);
        out.clear();
    });
    let peak = peak_kib().saturating_sub(before);
    let report = seq.report(5, 2);

    let rate = calls as f64 / elapsed.as_secs_f64();
    let base_rate = calls as f64 / base.as_secs_f64();
    println!(
        "trace 1/{scale} of Cloudflare's snapshot: {calls} calls, {sessions} sessions, {ENDPOINTS} endpoints, one hour"
    );
    println!(
        "n-grams (n = 1..5) held: {} (evicted {}), endpoints named: {}, sequences: {}",
        report.ngrams, report.evicted, report.endpoints, report.sequences
    );
    println!();
    println!("| stage | calls/s (one core) | vs. generator |");
    println!("|---|---:|---:|");
    println!("| baseline: trace generator alone | {base_rate:.0} | 1.00x |");
    println!(
        "| sequence engine (sessions, n-grams, rules, model) | {rate:.0} | {:.3}x |",
        rate / base_rate
    );
    println!();
    println!(
        "at this rate, the full shape's hour (260M calls) takes {:.1}x less than an hour \
         (goal >= 5x, i.e. 360,000 calls/s: {}); peak memory added: {} MiB (goal <= 512 MiB at full shape)",
        rate / (260_000_000.0 / 3600.0),
        if rate >= 360_000.0 { "met" } else { "NOT met" },
        peak / 1024
    );
    if let Some(top) = report.top.first() {
        println!(
            "top sequence: score {:.3}, {} times: {}",
            top.score,
            top.count,
            top.sequence.join(" -> ")
        );
    }
}
