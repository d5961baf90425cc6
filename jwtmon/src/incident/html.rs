//! The HTML report: one self-contained page (inline CSS and SVG, no
//! external assets) with the trend per day stacked by severity, the
//! incidents per kind as bars, the time-to-detect/mitigate figures and the
//! top tables.

use std::fmt::Write;

use super::report::{Ranked, SEVERITIES, Summary, date, spread_text};

/// Bar colours per severity (low..critical).
const COLOURS: [&str; 4] = ["#8ab4f8", "#fbbc04", "#f28b30", "#d93025"];

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Per-day stacked columns.
fn trend(s: &Summary) -> String {
    let (w, h, pad) = (760.0, 220.0, 30.0);
    let max = s.per_day.iter().map(|d| d.total).max().unwrap_or(0).max(1) as f64;
    let n = s.per_day.len().max(1) as f64;
    let step = (w - 2.0 * pad) / n;
    let mut o = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" aria-label="Incidents per day"><line x1="{pad}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="#999"/><text x="4" y="{ty}" font-size="11">{max}</text><text x="4" y="{y0}" font-size="11">0</text>"##,
        y0 = h - pad,
        x1 = w - pad,
        ty = pad + 4.0,
    );
    for (i, d) in s.per_day.iter().enumerate() {
        let x = pad + i as f64 * step + step * 0.1;
        let mut y = h - pad;
        for (sev, count) in d.by_severity.iter().enumerate() {
            if *count == 0 {
                continue;
            }
            let bh = (h - 2.0 * pad) * *count as f64 / max;
            y -= bh;
            let _ = write!(
                o,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{bw:.1}" height="{bh:.1}" fill="{c}"><title>{date}: {count} {sev}</title></rect>"#,
                bw = step * 0.8,
                c = COLOURS[sev],
                date = d.date,
                sev = SEVERITIES[sev],
            );
        }
        if s.per_day.len() <= 31 || i % (s.per_day.len() / 15).max(1) == 0 {
            let _ = write!(
                o,
                r#"<text x="{tx:.1}" y="{ty}" font-size="10" text-anchor="middle">{}</text>"#,
                &d.date[5..],
                tx = x + step * 0.4,
                ty = h - pad + 14.0,
            );
        }
    }
    o.push_str("</svg>");
    o
}

/// Horizontal bars of named counts, each in its colour.
fn bars(rows: &[(String, u64, &str)]) -> String {
    let (w, row) = (760.0, 22.0);
    let label = 220.0;
    let max = rows.iter().map(|r| r.1).max().unwrap_or(0).max(1) as f64;
    let h = row * rows.len().max(1) as f64 + 6.0;
    let mut o =
        format!(r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img">"#);
    for (i, (name, count, colour)) in rows.iter().enumerate() {
        let y = i as f64 * row + 3.0;
        let bw = (w - label - 60.0) * *count as f64 / max;
        let _ = write!(
            o,
            r#"<text x="{tx}" y="{ty:.1}" font-size="12" text-anchor="end">{name}</text><rect x="{label}" y="{y:.1}" width="{bw:.1}" height="{bh}" fill="{colour}"/><text x="{cx:.1}" y="{ty:.1}" font-size="12">{count}</text>"#,
            tx = label - 6.0,
            ty = y + 14.0,
            name = esc(name),
            bh = row - 6.0,
            cx = label + bw + 4.0,
        );
    }
    o.push_str("</svg>");
    o
}

fn ranked_table(title: &str, rows: &[Ranked]) -> String {
    let mut o = format!(
        "<h2>{}</h2><table><tr><th>Name</th><th>Incidents</th><th>Findings</th></tr>",
        esc(title)
    );
    if rows.is_empty() {
        o.push_str("<tr><td colspan=3>(none)</td></tr>");
    }
    for r in rows {
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&r.name),
            r.incidents,
            r.findings
        );
    }
    o.push_str("</table>");
    o
}

/// The whole page.
pub fn render(s: &Summary) -> String {
    let kinds: Vec<(String, u64, &str)> = {
        let mut v: Vec<_> = s
            .by_kind
            .iter()
            .map(|(k, v)| (k.clone(), *v, "#1a73e8"))
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    };
    let sev: Vec<(String, u64, &str)> = SEVERITIES
        .iter()
        .zip(COLOURS)
        .map(|(x, c)| {
            (
                x.to_string(),
                s.by_severity.get(&x.to_string()).copied().unwrap_or(0),
                c,
            )
        })
        .collect();
    let legend: String = SEVERITIES
        .iter()
        .zip(COLOURS)
        .map(|(s, c)| format!(r#"<span class="key" style="background:{c}"></span>{s} "#))
        .collect();
    let mut o = String::new();
    let _ = write!(
        o,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>jwtmon incident report</title>
<style>body{{font-family:system-ui,sans-serif;margin:24px;color:#202124;max-width:820px}}
h1{{font-size:22px}}h2{{font-size:16px;margin-top:28px}}
.cards{{display:flex;gap:12px;flex-wrap:wrap}}.card{{border:1px solid #dadce0;border-radius:8px;padding:10px 14px;min-width:150px}}
.card b{{display:block;font-size:22px}}table{{border-collapse:collapse;width:100%}}
td,th{{border-bottom:1px solid #eee;padding:4px 8px;text-align:left;font-size:13px}}
.key{{display:inline-block;width:12px;height:12px;margin:0 4px 0 10px;vertical-align:middle}}</style></head><body>
<h1>jwtmon incident report</h1><p>{from} to {to} (UTC)</p>
<div class="cards"><div class="card">Incidents<b>{n}</b></div><div class="card">Findings<b>{f}</b></div>
<div class="card">Blocks issued<b>{blocks}</b></div><div class="card">Tokens revoked<b>{rev}</b></div></div>
<div class="cards" style="margin-top:12px"><div class="card">Time to detect (median / p95)<b>{ttd}</b></div>
<div class="card">Time to mitigate (median / p95)<b>{ttm}</b></div></div>
<h2>Incidents per day</h2><div>{legend}</div>{trend}
<h2>By kind</h2>{kinds}<h2>By severity</h2>{sev}"#,
        from = date(s.from),
        to = date(s.to - std::time::Duration::from_secs(1)),
        n = s.incidents,
        f = s.findings,
        blocks = s.blocks,
        rev = s.revocations,
        ttd = esc(&spread_text(&s.time_to_detect)),
        ttm = esc(&spread_text(&s.time_to_mitigate)),
        trend = trend(s),
        kinds = bars(&kinds),
        sev = bars(&sev),
    );
    o.push_str(&ranked_table("Top sources", &s.top_sources));
    o.push_str(&ranked_table("Top subjects", &s.top_subjects));
    o.push_str(&ranked_table("Top endpoints", &s.top_endpoints));
    o.push_str("</body></html>\n");
    o
}
