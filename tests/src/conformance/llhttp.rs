//! Grades jwtmon's request parser against llhttp's request test cases
//! (`llhttp-request/*.md`): every case llhttp rejects must be reported as
//! malformed, every case it accepts must parse to the same method, URL and
//! the header fields jwtmon extracts.

use std::{fmt::Write as _, fs, path::Path};

use anyhow::{Context, Result};
use jwtmon::parse::{Request, parse_requests};

/// One case: the bytes and what llhttp made of them.
#[derive(Debug, Default)]
pub struct Case {
    /// `file.md: heading`.
    pub name: String,
    /// The `type` from the case's meta line.
    pub kind: String,
    /// Raw request bytes.
    pub input: Vec<u8>,
    /// Messages llhttp completed before an error (if any).
    pub messages: Vec<Message>,
    /// llhttp's error code and reason, if it stopped with one.
    pub error: Option<(u32, String)>,
    /// The protocol and version of the first message (`HTTP`, `1.1`).
    pub protocol: (String, String),
}

/// A message as llhttp reported it.
#[derive(Debug, Default, Clone)]
pub struct Message {
    /// Method.
    pub method: String,
    /// Request target.
    pub url: String,
    /// Header (name, value) pairs.
    pub headers: Vec<(String, String)>,
}

/// How a case is graded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// llhttp accepts: must parse to the same fields.
    WellFormed,
    /// llhttp rejects the request itself: must be reported malformed.
    Malformed,
    /// Only accepted with an llhttp leniency flag: reported, not graded.
    Lenient,
    /// An error about connection state (data after `Connection: close`)
    /// or chunked body framing beyond the captured head: not graded.
    NotApplicable,
    /// jwtmon differs from llhttp on purpose (see [`Case::deviation`]).
    Deviation,
}

impl Case {
    /// Where jwtmon deliberately differs from llhttp, and why.
    pub fn deviation(&self) -> Option<&'static str> {
        let (proto, _) = &self.protocol;
        let reason = self.error.as_ref().map_or("", |(_, r)| r.as_str());
        if proto != "HTTP" && !proto.is_empty() {
            Some("RTSP/ICE are not HTTP: reported malformed")
        } else if proto.is_empty() && self.error.is_none() {
            Some("HTTP/0.9 (no version): reported malformed")
        } else if reason.contains("method") {
            Some("extension methods are legal (RFC 9110 9.1): accepted")
        } else if reason.contains("url path") {
            Some("raw UTF-8 in the target: accepted and analysed, as servers do")
        } else if self.error.is_none()
            && head_of(&self.input)
                .windows(3)
                .any(|w| w[0] == b'\r' && w[1] == b'\n' && (w[2] == b' ' || w[2] == b'\t'))
        {
            Some("obs-fold (RFC 9112 5.2): reported malformed")
        } else {
            None
        }
    }

    /// How this case is graded.
    pub fn class(&self) -> Class {
        if self.kind.starts_with("request-lenient") {
            return Class::Lenient;
        }
        if self.deviation().is_some() {
            return Class::Deviation;
        }
        match &self.error {
            None => Class::WellFormed,
            // 22/23: llhttp pauses on CONNECT/Upgrade/PRI; the head is fine.
            Some((22 | 23, _)) => Class::WellFormed,
            Some((5, _)) => Class::NotApplicable,
            // Input ending inside a body: a capture holds body prefixes.
            Some((0, _)) if head_of(&self.input).ends_with(b"\r\n\r\n") => Class::NotApplicable,
            Some((_, reason)) if reason.contains("chunk") => Class::NotApplicable,
            Some(_) => Class::Malformed,
        }
    }
}

/// The bytes up to the end of the first header block.
fn head_of(input: &[u8]) -> &[u8] {
    let end = input
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(input.len(), |p| p + 4);
    &input[..end]
}

/// Decodes the corpus escapes: a bare newline is CRLF, a trailing `\`
/// joins lines; `\r \n \t \xNN`.
fn decode_http(block: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for line in block.split_inclusive('\n') {
        let (line, nl) = match line.strip_suffix('\n') {
            Some(l) => match l.strip_suffix('\\') {
                Some(joined) => (joined, false),
                None => (l, true),
            },
            None => (line, false),
        };
        unescape_into(line, &mut out);
        if nl {
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

fn unescape_into(s: &str, out: &mut Vec<u8>) {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            match b[i + 1] {
                b'r' => out.push(b'\r'),
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'f' => out.push(0x0c),
                b'"' => out.push(b'"'),
                b'\\' => out.push(b'\\'),
                b'x' if i + 3 < b.len() => {
                    if let Ok(v) = u8::from_str_radix(&s[i + 2..i + 4], 16) {
                        out.push(v);
                        i += 4;
                        continue;
                    }
                    out.push(b'\\');
                    i += 1;
                    continue;
                }
                _ => {
                    out.push(b'\\');
                    i += 1;
                    continue;
                }
            }
            i += 2;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
}

/// The quoted span value in a log line, unescaped.
fn span_value(line: &str) -> String {
    let Some(start) = line.find("=\"") else {
        return String::new();
    };
    let raw = line[start + 2..]
        .strip_suffix('"')
        .unwrap_or(&line[start + 2..]);
    let mut v = Vec::new();
    unescape_into(raw, &mut v);
    String::from_utf8_lossy(&v).into_owned()
}

fn parse_log(log: &str, case: &mut Case) {
    let mut cur = Message::default();
    let (mut field, mut value) = (String::new(), String::new());
    let mut in_head = true;
    for line in log.lines() {
        let event = line.split_once(' ').map_or("", |(_, e)| e);
        let event = if event.starts_with("len=") {
            event.split_once(' ').map_or("", |(_, e)| e)
        } else {
            event
        };
        if event.starts_with("span[method]") {
            cur.method.push_str(&span_value(line));
        } else if event.starts_with("span[url]") {
            cur.url.push_str(&span_value(line));
        } else if event.starts_with("span[header_field]") {
            field.push_str(&span_value(line));
        } else if event.starts_with("span[header_value]") {
            value.push_str(&span_value(line));
        } else if event.starts_with("span[protocol]") && case.messages.is_empty() {
            case.protocol.0 = span_value(line);
        } else if event.starts_with("span[version]") && case.messages.is_empty() {
            case.protocol.1 = span_value(line);
        } else if event.starts_with("header_value complete") {
            // Trailer fields (after the chunked body) are not head fields.
            let pair = (std::mem::take(&mut field), std::mem::take(&mut value));
            if in_head {
                cur.headers.push(pair);
            }
        } else if event.starts_with("headers complete") {
            in_head = false;
        } else if event.starts_with("message complete") {
            case.messages.push(std::mem::take(&mut cur));
            in_head = true;
        } else if event.starts_with("finish=2") {
            // llhttp: ending the input here is unsafe (a cut head).
            case.error = Some((0, "unsafe finish".into()));
        } else if let Some(rest) = event.strip_prefix("error code=") {
            let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
            let reason = reason.trim_start_matches("reason=").trim_matches('"');
            case.error = Some((code.parse().unwrap_or(0), reason.to_string()));
            break;
        }
    }
}

/// Reads every case in the `.md` files of `dir`.
pub fn load(dir: &Path) -> Result<Vec<Case>> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    files.sort();
    let mut cases = Vec::new();
    for file in files {
        let text = fs::read_to_string(&file)?;
        let fname = file.file_name().unwrap_or_default().to_string_lossy();
        let mut heading = String::new();
        let mut kind: Option<String> = None;
        let mut lines = text.lines();
        while let Some(line) = lines.next() {
            if let Some(h) = line.strip_prefix("## ").or(line.strip_prefix("### ")) {
                heading = h.trim().to_string();
            } else if let Some(meta) = line.strip_prefix("<!-- meta=") {
                let meta = meta.trim_end_matches("-->").trim();
                kind = serde_json::from_str::<serde_json::Value>(meta)
                    .ok()
                    .and_then(|v| v["type"].as_str().map(str::to_string));
            } else if line.starts_with("```http") {
                let mut block = String::new();
                for l in lines.by_ref() {
                    if l.starts_with("```") {
                        break;
                    }
                    block.push_str(l);
                    block.push('\n');
                }
                // Every newline is a CRLF, the last one too (upstream's
                // cases rely on that trailing CRLF).
                let mut case = Case {
                    name: format!("{fname}: {heading}"),
                    kind: kind.take().unwrap_or_else(|| "request".into()),
                    input: decode_http(&block),
                    ..Case::default()
                };
                for l in lines.by_ref() {
                    if l.starts_with("```log") {
                        let mut log = String::new();
                        for l in lines.by_ref() {
                            if l.starts_with("```") {
                                break;
                            }
                            log.push_str(l);
                            log.push('\n');
                        }
                        parse_log(&log, &mut case);
                        break;
                    }
                }
                if case.kind.starts_with("request") {
                    cases.push(case);
                }
            }
        }
    }
    Ok(cases)
}

fn header<'a>(m: &'a Message, name: &str) -> Option<&'a str> {
    m.headers
        .iter()
        .rev()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Why a parsed request differs from llhttp's message, if it does.
fn compare(got: &Request, want: &Message) -> Option<String> {
    let url = match &got.query {
        Some(q) => format!("{}?{q}", got.path),
        None => got.path.clone(),
    };
    // jwtmon analyses an absolute-form target as its origin form, with the
    // authority as the host (RFC 9112 3.2.2); llhttp reports the raw URL.
    let absolute = jwtmon::parse::http::absolute_form(&want.url);
    let want_url = absolute
        .as_ref()
        .map_or(want.url.as_str(), |(_, origin)| origin);
    if got.method != want.method || url != want_url {
        return Some(format!(
            "start line: got {} {url}, llhttp {} {}",
            got.method, want.method, want.url
        ));
    }
    let fields = [
        ("host", got.host.as_deref()),
        ("user-agent", got.user_agent.as_deref()),
        ("content-type", got.content_type.as_deref()),
    ];
    for (name, ours) in fields {
        let theirs = match &absolute {
            Some((authority, _)) if name == "host" => Some(*authority),
            _ => header(want, name).map(str::trim),
        };
        if ours.map(str::trim) != theirs {
            return Some(format!("{name}: got {ours:?}, llhttp {theirs:?}"));
        }
    }
    None
}

/// The grade of one case: `None` when jwtmon agrees.
pub fn grade(case: &Case) -> Option<String> {
    let got = std::panic::catch_unwind(|| parse_requests(&case.input, true))
        .map_err(|_| "parser panicked".to_string());
    let got = match got {
        Ok(g) => g,
        Err(e) => return Some(e),
    };
    let first_err = got.iter().find_map(|r| r.as_ref().err().copied());
    match case.class() {
        Class::Malformed => match first_err {
            Some(_) => None,
            // A head cut at the end of the input is flagged `truncated`.
            None if case.error.as_ref().is_some_and(|(c, _)| *c == 0)
                && got.iter().any(|r| r.as_ref().is_ok_and(|r| r.truncated)) =>
            {
                None
            }
            None => Some(format!("accepted; llhttp: {:?}", case.error)),
        },
        Class::WellFormed => {
            if let Some(e) = first_err {
                return Some(format!("rejected as {e}"));
            }
            // A head may carry a body jwtmon does not walk past (chunked),
            // so only the messages jwtmon reports are compared.
            if got.is_empty() && !case.messages.is_empty() {
                return Some("no request parsed".into());
            }
            got.iter()
                .filter_map(|r| r.as_ref().ok())
                .zip(&case.messages)
                .find_map(|(g, w)| compare(g, w))
        }
        Class::Lenient | Class::NotApplicable | Class::Deviation => None,
    }
}

/// Runs the whole corpus; returns the printed report and the counts
/// (agree, disagree) over the graded cases.
pub fn run(dir: &Path) -> Result<(String, usize, usize)> {
    let cases = load(dir)?;
    let mut report = String::new();
    let (mut agree, mut disagree) = (0, 0);
    let mut by_class = [0usize; 5];
    let mut deviations = std::collections::BTreeMap::<&str, usize>::new();
    let mut lenient_rejected = 0;
    for case in &cases {
        let class = case.class();
        by_class[class as usize] += 1;
        if class == Class::Lenient {
            let rejected = parse_requests(&case.input, true)
                .iter()
                .any(std::result::Result::is_err);
            lenient_rejected += usize::from(rejected);
            continue;
        }
        if class == Class::NotApplicable {
            continue;
        }
        if let Some(why) = case.deviation() {
            *deviations.entry(why).or_default() += 1;
            continue;
        }
        match grade(case) {
            None => agree += 1,
            Some(why) => {
                disagree += 1;
                let _ = writeln!(report, "  disagree: {} ({class:?}): {why}", case.name);
            }
        }
    }
    let graded = agree + disagree;
    let _ = writeln!(
        report,
        "llhttp-request: {} cases; graded {graded} ({} well-formed, {} malformed): \
         agree {agree}, disagree {disagree} ({:.1}% agreement)",
        cases.len(),
        by_class[Class::WellFormed as usize],
        by_class[Class::Malformed as usize],
        100.0 * agree as f64 / graded.max(1) as f64
    );
    let _ = writeln!(
        report,
        "  not graded: {} lenient-only cases (jwtmon is strict: rejects {lenient_rejected}), \
         {} about connection state or chunked body framing",
        by_class[Class::Lenient as usize],
        by_class[Class::NotApplicable as usize]
    );
    for (why, n) in deviations {
        let _ = writeln!(report, "  deliberate deviation ({n}): {why}");
    }
    Ok((report, agree, disagree))
}
