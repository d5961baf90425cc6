//! CLI commands around incidents: the incident register, period reports,
//! token revocations, and the admin-API-first path of the map edits.

use std::{io::Write, time::SystemTime};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::{
    admin::client::{self, ClientError},
    cli::{IncidentsAction, ReportFormat},
    clock,
    config::Config,
    incident::{
        Incident, html, report,
        store::{Query, Store},
    },
};

/// Calls the running daemon's admin API. `Ok(None)`: no daemon answers
/// (the caller falls back); an error answer becomes an error with its
/// reason.
pub(super) fn api(
    config: &Config,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<Option<Value>> {
    if config.admin.socket.as_os_str().is_empty() {
        return Ok(None);
    }
    let socket = config.state_path(&config.admin.socket);
    match client::call(&socket, method, path, body.as_ref()) {
        Ok((status, v)) if (200..300).contains(&status) => Ok(Some(v)),
        Ok((status, v)) => bail!(
            "{}",
            v["error"].as_str().map_or_else(
                || format!("the daemon answered HTTP {status}"),
                str::to_string
            )
        ),
        Err(ClientError::NotRunning(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// A query-string value.
pub(super) fn q(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn database(config: &Config) -> Result<std::path::PathBuf> {
    if !config.incidents.enabled {
        bail!("the incident register is off (incidents.enabled = false)");
    }
    let db = config.state_path(&config.incidents.database);
    if !db.exists() {
        bail!(
            "no incident database at {} (the daemon creates it; check daemon.state_dir / --state-dir)",
            db.display()
        );
    }
    Ok(db)
}

fn time(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

fn ms_since(a: SystemTime, b: SystemTime) -> String {
    format!(
        "{:.1} ms",
        b.duration_since(a).unwrap_or_default().as_secs_f64() * 1e3
    )
}

fn show(i: &Incident, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(
        out,
        "incident #{} — {} ({}), {}",
        i.id,
        i.kind,
        i.severity,
        i.status.as_str()
    )?;
    writeln!(out, "  source      {}", i.source)?;
    writeln!(out, "  subject     {}", i.subject.as_deref().unwrap_or("-"))?;
    writeln!(
        out,
        "  token_id    {}",
        i.token_id.as_deref().unwrap_or("-")
    )?;
    writeln!(out, "  endpoint    {}", i.endpoint)?;
    writeln!(
        out,
        "  findings    {} (latest decision: {})",
        i.count, i.decision
    )?;
    writeln!(out, "  first seen  {}", time(i.first_seen))?;
    writeln!(out, "  last seen   {}", time(i.last_seen))?;
    writeln!(
        out,
        "  detected    {} (+{})",
        time(i.detected_at),
        ms_since(i.first_seen, i.detected_at)
    )?;
    if let Some(m) = i.mitigated_at {
        writeln!(
            out,
            "  mitigated   {} (+{})",
            time(m),
            ms_since(i.first_seen, m)
        )?;
    }
    if let Some(c) = i.closed_at {
        writeln!(out, "  closed      {}", time(c))?;
    }
    writeln!(out, "  evidence    {}", i.evidence)?;
    for a in &i.actions {
        let ttl = a
            .ttl_s
            .map(|t| {
                format!(
                    " for {}",
                    clock::fmt_duration(std::time::Duration::from_secs(t))
                )
            })
            .unwrap_or_default();
        writeln!(
            out,
            "  action      {} {} {}{ttl}",
            time(a.at),
            a.action,
            a.target
        )?;
    }
    for n in &i.notes {
        writeln!(out, "  note        {} {}", time(n.at), n.text)?;
    }
    Ok(())
}

/// `jwtmon incidents ...`.
pub(super) fn incidents(config: &Config, action: IncidentsAction) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match action {
        IncidentsAction::List {
            since,
            kind,
            limit,
            json,
        } => {
            let since = since
                .map(|s| clock::parse_since(&s, SystemTime::now()))
                .transpose()
                .map_err(anyhow::Error::msg)?;
            let db = database(config)?;
            let list = Store::open_readonly(&db)?.list(&Query {
                since,
                kind,
                limit,
                ..Default::default()
            })?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
                return Ok(());
            }
            writeln!(
                out,
                "{:>6}  {:<20}  {:<24} {:<8} {:<9} {:>6}  {:<19}  SUBJECT",
                "ID", "FIRST SEEN", "KIND", "SEVERITY", "STATUS", "COUNT", "SOURCE"
            )?;
            for i in &list {
                writeln!(
                    out,
                    "{:>6}  {:<20}  {:<24} {:<8} {:<9} {:>6}  {:<19}  {}",
                    i.id,
                    time(i.first_seen),
                    i.kind,
                    i.severity.to_string(),
                    i.status.as_str(),
                    i.count,
                    i.source,
                    i.subject.as_deref().unwrap_or("-")
                )?;
            }
            Ok(())
        }
        IncidentsAction::Show { id, json } => {
            let db = database(config)?;
            let Some(i) = Store::open_readonly(&db)?.get(id)? else {
                bail!("no incident {id}");
            };
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&i)?)?;
            } else {
                show(&i, &mut out)?;
            }
            Ok(())
        }
        IncidentsAction::Close { id, note } => {
            if note.trim().is_empty() {
                bail!("--note must say why the incident is closed");
            }
            // Through the daemon when it runs, so it stops collecting.
            let closed = match api(
                config,
                "POST",
                &format!("/v1/incidents/{id}/close"),
                Some(json!({ "note": note })),
            )? {
                Some(v) => serde_json::from_value::<Incident>(v).context("the daemon's answer")?,
                None => Store::open(&database(config)?)?.close(id, &note, SystemTime::now())?,
            };
            writeln!(
                out,
                "closed incident #{} ({} from {})",
                closed.id, closed.kind, closed.source
            )?;
            Ok(())
        }
    }
}

/// `jwtmon report`.
pub(super) fn report(
    config: &Config,
    from: &str,
    to: Option<&str>,
    format: ReportFormat,
) -> Result<()> {
    let now = SystemTime::now();
    let from = clock::parse_since(from, now).map_err(anyhow::Error::msg)?;
    let to = to
        .map(|t| clock::parse_since(t, now))
        .transpose()
        .map_err(anyhow::Error::msg)?
        .unwrap_or(now);
    if to <= from {
        bail!("--to must be after --from");
    }
    let db = database(config)?;
    let list = Store::open_readonly(&db)?.list(&Query {
        since: Some(from),
        until: Some(to),
        ..Default::default()
    })?;
    let s = report::summarize(&list, from, to);
    let mut out = std::io::stdout().lock();
    match format {
        ReportFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&s)?)?,
        ReportFormat::Md => write!(out, "{}", report::markdown(&s))?,
        ReportFormat::Html => write!(out, "{}", html::render(&s))?,
    }
    Ok(())
}

/// `jwtmon revoke` / `unrevoke`: through the running daemon, else by
/// editing jwt.revocation_file.
pub(super) fn revoke(config: &Config, token_id: &str, lift: bool) -> Result<()> {
    let id = token_id.trim().to_ascii_lowercase();
    if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!(
            "`{token_id}` is not a token_id or api_key_id (16 hex characters, as findings show it); never pass the token or key itself"
        );
    }
    let answer = if lift {
        api(
            config,
            "DELETE",
            &format!("/v1/revocations?token_id={id}"),
            None,
        )?
    } else {
        api(
            config,
            "POST",
            "/v1/revocations",
            Some(json!({ "token_id": id })),
        )?
    };
    if answer.is_none() {
        let Some(file) = &config.jwt.revocation_file else {
            bail!(
                "no daemon runs and jwt.revocation_file is not set: nowhere to keep the revocation"
            );
        };
        let mut list = crate::jwt::revocation::RevocationList::load(file)?;
        if lift {
            if !list.unrevoke_token_id(&id)? {
                bail!("token_id {id} is not revoked");
            }
        } else {
            list.revoke_token_id(&id)?;
        }
    }
    println!("{} id {id}", if lift { "unrevoked" } else { "revoked" });
    Ok(())
}
