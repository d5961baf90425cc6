//! What an alert looks like in each sink: a Slack Block Kit message, a
//! generic JSON document, an e-mail subject with plain-text and HTML
//! bodies. Only pseudonymized sources, token ids and subjects appear.

use serde_json::{Value, json};

use super::Alert;
use crate::{clock::fmt_duration, incident::html::esc};

fn time(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

fn action_text(a: &Alert) -> String {
    match (a.action.as_str(), a.ttl_s) {
        ("block_ip", Some(ttl)) => format!(
            "blocked for {}",
            fmt_duration(std::time::Duration::from_secs(ttl))
        ),
        ("block_ip", None) => "blocked".into(),
        ("revoke_token", _) => "token revoked".into(),
        ("alert", _) => "alert only".into(),
        (other, _) => other.replace('_', " "),
    }
}

/// The one-line summary (Slack fallback text, e-mail subject).
pub fn headline(a: &Alert) -> String {
    let times = if a.count > 1 {
        format!(" ×{}", a.count)
    } else {
        String::new()
    };
    format!(
        "[jwtmon] {} {}{} from {} — {}",
        a.severity.to_string().to_uppercase(),
        a.kind,
        times,
        a.source,
        action_text(a)
    )
}

fn fields(a: &Alert) -> Vec<(&'static str, String)> {
    vec![
        ("Kind", a.kind.clone()),
        ("Severity", a.severity.to_string()),
        ("Source", a.source.clone()),
        ("Subject", a.subject.clone().unwrap_or_else(|| "–".into())),
        ("Endpoint", a.endpoint.clone()),
        ("Action", action_text(a)),
        (
            "TTL",
            a.ttl_s.map_or_else(
                || "–".into(),
                |t| fmt_duration(std::time::Duration::from_secs(t)),
            ),
        ),
        ("Count", a.count.to_string()),
        ("Incident", format!("#{} ({})", a.incident_id, a.status)),
        ("Token", a.token_id.clone().unwrap_or_else(|| "–".into())),
    ]
}

/// Slack incoming-webhook payload (Block Kit, with fallback text).
pub fn slack(a: &Alert) -> Value {
    let emoji = match a.severity {
        crate::finding::Severity::Critical => ":rotating_light:",
        crate::finding::Severity::High => ":red_circle:",
        crate::finding::Severity::Medium => ":large_orange_circle:",
        crate::finding::Severity::Low => ":large_blue_circle:",
    };
    let field_blocks: Vec<Value> = fields(a)
        .into_iter()
        .map(|(k, v)| json!({"type": "mrkdwn", "text": format!("*{k}*\n{}", slack_escape(&v))}))
        .collect();
    let (first, rest) = field_blocks.split_at(field_blocks.len().min(10));
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "emoji": true,
            "text": format!("{emoji} {} {}", a.severity.to_string().to_uppercase(), a.kind)}}),
        json!({"type": "section", "fields": first}),
    ];
    if !rest.is_empty() {
        blocks.push(json!({"type": "section", "fields": rest}));
    }
    if !a.evidence.is_empty() {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn",
            "text": format!("*Evidence*\n```{}```", slack_escape(&a.evidence))}}));
    }
    let what = if a.follow_up {
        format!("{} more since the last alert", a.count)
    } else {
        format!("{} finding(s)", a.count)
    };
    blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn",
        "text": format!("{what} · first {} · last {} · `jwtmon incidents show {}`",
            time(a.first_seen), time(a.last_seen), a.incident_id)}]}));
    json!({"text": headline(a), "blocks": blocks})
}

/// Slack's three escapes.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Generic webhook payload.
pub fn webhook(a: &Alert) -> Value {
    json!({
        "source": "jwtmon",
        "event_type": "incident_alert",
        "summary": headline(a),
        "severity": a.severity,
        "dedup_key": format!("jwtmon-{}-{}", a.kind, a.source),
        "alert": a,
    })
}

/// E-mail subject, plain text and HTML.
pub fn email(a: &Alert) -> (String, String, String) {
    let mut text = format!("{}\n\n", headline(a));
    let mut rows = String::new();
    for (k, v) in fields(a) {
        text.push_str(&format!("{k:<9} {v}\n"));
        rows.push_str(&format!(
            "<tr><th align=\"left\">{k}</th><td>{}</td></tr>",
            esc(&v)
        ));
    }
    text.push_str(&format!(
        "First     {}\nLast      {}\nEvidence  {}\n\nDetails: jwtmon incidents show {}\n",
        time(a.first_seen),
        time(a.last_seen),
        a.evidence,
        a.incident_id
    ));
    let html = format!(
        "<!DOCTYPE html><html><body style=\"font-family:sans-serif\"><h2>{}</h2><table>{rows}\
         <tr><th align=\"left\">First</th><td>{}</td></tr><tr><th align=\"left\">Last</th><td>{}</td></tr>\
         </table><p><b>Evidence</b><br><code>{}</code></p><p>Details: <code>jwtmon incidents show {}</code></p></body></html>",
        esc(&headline(a)),
        time(a.first_seen),
        time(a.last_seen),
        esc(&a.evidence),
        a.incident_id
    );
    (headline(a), text, html)
}
