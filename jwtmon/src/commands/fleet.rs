//! `jwtmon fleet status`, and the CLI's own share of fleet changes (when
//! no daemon answers on the admin API, the CLI writes the local maps and
//! publishes the change to Redis itself).

use std::time::{Duration, SystemTime};

use anyhow::{Result, bail};
use serde_json::json;

use crate::{
    config::Config,
    fleet::{self, Change, Op},
    target::Target,
};

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// Publishes a change made by this CLI to the fleet (a no-op without
/// `[fleet]`). A fleet that cannot be reached is a warning, not a failure:
/// the local maps already hold the change.
pub fn share(config: &Config, op: Op, target: &Target, reason: &str, ttl: Option<Duration>) {
    if !config.fleet.enabled() {
        return;
    }
    let change = Change::new(op, target, reason, &config.fleet.node(), ttl);
    let result = runtime().map_err(|e| e.to_string()).and_then(|rt| {
        rt.block_on(fleet::publish_now(&config.fleet, &change))
            .map_err(|e| e.to_string())
    });
    match result {
        Ok(()) => eprintln!("shared with the fleet ({})", config.fleet.key_prefix),
        Err(e) => eprintln!("warning: not shared with the fleet: {e}"),
    }
}

/// `jwtmon fleet status`.
pub fn status(config: &Config, as_json: bool) -> Result<()> {
    if !config.fleet.enabled() {
        bail!("no [fleet] section in the configuration (fleet.redis_url is empty)");
    }
    let rt = runtime()?;
    let (nodes, blocks) = rt.block_on(async {
        let mut conn = fleet::connect(&config.fleet).await?;
        let nodes = conn
            .nodes()
            .await
            .map_err(|e| anyhow::anyhow!("reading nodes: {e}"))?;
        let blocks = conn
            .blocks()
            .await
            .map_err(|e| anyhow::anyhow!("reading blocks: {e}"))?;
        Ok::<_, anyhow::Error>((nodes, blocks))
    })?;
    let now = fleet::unix_ms(SystemTime::now());
    if as_json {
        println!("{}", json!({ "nodes": nodes, "blocks": blocks }));
        return Ok(());
    }
    println!(
        "{:<24} {:>10} {:>8} {:>9} {:>7}",
        "NODE", "LAST SEEN", "BLOCKS", "LAG", "QUEUED"
    );
    let mut nodes = nodes;
    nodes.sort_by(|a, b| a["node"].as_str().cmp(&b["node"].as_str()));
    for n in &nodes {
        let seen = n["last_seen_ms"].as_u64().map_or("-".into(), |t| {
            format!("{:.1}s ago", now.saturating_sub(t) as f64 / 1000.0)
        });
        println!(
            "{:<24} {:>10} {:>8} {:>7.1}ms {:>7}",
            n["node"].as_str().unwrap_or("?"),
            seen,
            n["blocks"].as_i64().unwrap_or(0),
            n["lag_ms"].as_f64().unwrap_or(0.0),
            n["queued"].as_u64().unwrap_or(0)
        );
    }
    println!("\n{} fleet block entries", blocks.len());
    println!(
        "{:<43} {:<16} {:>10} REASON",
        "TARGET", "ORIGIN NODE", "LEFT"
    );
    for b in blocks.iter().take(50) {
        let left = b
            .remaining(now)
            .map_or("permanent".into(), crate::clock::fmt_duration);
        println!("{:<43} {:<16} {:>10} {}", b.target, b.node, left, b.reason);
    }
    if blocks.len() > 50 {
        println!("... and {} more (--json lists all)", blocks.len() - 50);
    }
    Ok(())
}
