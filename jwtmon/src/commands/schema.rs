//! `jwtmon schema learn` and `jwtmon schema show`: the schema model
//! offline.

use std::{io::Write, path::Path};

use anyhow::{Context, Result, bail};

use crate::{
    cli::SchemaAction,
    config::Config,
    detect::{
        config::SchemaConfig,
        schema::{
            model::{Endpoint, Model},
            shape::{class, kind, names},
        },
    },
    engine::{Engine, Use},
    offline::observe_file,
};

/// Runs one `jwtmon schema` subcommand.
pub fn execute(config: &Config, action: &SchemaAction) -> Result<()> {
    match action {
        SchemaAction::Learn { pcap, out } => learn(config, pcap, out),
        SchemaAction::Show { model, json } => show(&config.detect.schema, model, *json),
    }
}

fn learn(config: &Config, pcaps: &[std::path::PathBuf], out: &Path) -> Result<()> {
    let mut config = config.clone();
    let s = &mut config.detect.schema;
    s.enabled = true;
    s.learn = true;
    s.save_to = Some(out.to_path_buf());
    let mut engine = Engine::from_config(&config, Use::Offline)?;
    let mut requests = 0usize;
    let mut findings = Vec::new();
    for p in pcaps {
        observe_file(p, &config.capture, |batch| {
            requests += batch.len();
            for o in batch {
                engine.analyze(o, &mut findings);
                findings.clear();
            }
        })
        .with_context(|| format!("learning from {}", p.display()))?;
    }
    engine
        .detectors
        .save()
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("writing {}", out.display()))?;
    let model = Model::load(out)?;
    let judging = model
        .endpoints
        .values()
        .filter(|e| state(&config.detect.schema, e) == "judging")
        .count();
    eprintln!(
        "{}: {} endpoints ({judging} past warm-up), {} parameters, from {requests} requests in {} file(s)",
        out.display(),
        model.endpoints.len(),
        model.parameters(),
        pcaps.len()
    );
    if model.endpoints.is_empty() {
        bail!(
            "nothing learnt: no 2xx answer without findings in the captures (are the ports in \
             capture.ports, and do the captures hold both directions?)"
        );
    }
    Ok(())
}

fn state(cfg: &SchemaConfig, e: &Endpoint) -> &'static str {
    if e.unmodellable {
        "unmodellable"
    } else if e.samples >= cfg.warmup_requests && e.principals.len() >= cfg.min_principals {
        "judging"
    } else {
        "learning"
    }
}

fn show(cfg: &SchemaConfig, path: &Path, json: bool) -> Result<()> {
    let model = Model::load(path)?;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&model)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "{}: {} endpoints, {} parameters (warm-up: {} requests from {} principals; names known after {} principals)",
        path.display(),
        model.endpoints.len(),
        model.parameters(),
        cfg.warmup_requests,
        cfg.min_principals,
        cfg.promote_after
    )?;
    for (name, e) in &model.endpoints {
        writeln!(
            out,
            "\n{name}  [{}: {} requests, {} principals]",
            state(cfg, e),
            e.samples,
            e.principals.len()
        )?;
        if e.params.is_empty() {
            continue;
        }
        writeln!(
            out,
            "  {:<32} {:<22} {:>11} {:<18} {:<8} flags",
            "parameter", "kinds", "length", "range", "values"
        )?;
        for (k, p) in &e.params {
            let sh = &p.shape;
            let range = sh
                .range
                .map_or_else(String::new, |(lo, hi)| format!("{lo}..{hi}"));
            let values = sh
                .values
                .as_ref()
                .map_or_else(|| "many".to_string(), |v| v.len().to_string());
            let mut flags = Vec::new();
            if p.principals.len() < cfg.promote_after {
                flags.push(format!("candidate ({} principals)", p.principals.len()));
            }
            if !p.optional && p.count >= e.samples {
                flags.push("always present".into());
            }
            if sh.classes & class::CONTROL != 0 {
                flags.push("control characters seen".into());
            }
            writeln!(
                out,
                "  {:<32} {:<22} {:>11} {:<18} {:<8} {}",
                k,
                names(sh.kinds, &kind::NAMES).join(","),
                format!("{}..{}", sh.len.0, sh.len.1),
                range,
                values,
                flags.join("; ")
            )?;
        }
    }
    Ok(())
}
