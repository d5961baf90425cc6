//! Judging a request against what its OpenAPI operation declares: query
//! names not declared, JSON members a closed body does not declare,
//! declared inputs that are missing, and values of the wrong type, not in
//! the `enum`, or outside `minLength`/`maxLength`/`minimum`/`maximum`.

use super::{
    Violation,
    shape::{fits, kind},
};
use crate::{
    detect::params::Param,
    finding::Kind,
    openapi::{Declared, DeclaredType, Document, Operation},
    parse::Request,
};

fn type_ok(ty: DeclaredType, text: &str, structural: Option<u16>, from_json: bool) -> bool {
    if structural == Some(kind::EMPTY) {
        return true;
    }
    match ty {
        DeclaredType::Any => true,
        DeclaredType::Integer => structural.is_none() && fits(kind::INT, text),
        DeclaredType::Number => structural.is_none() && fits(kind::FLOAT, text),
        DeclaredType::Boolean => structural.is_none() && fits(kind::BOOL, text),
        // Outside JSON every value is a string.
        DeclaredType::String => structural.is_none(),
        DeclaredType::Array => structural == Some(kind::ARRAY) || !from_json,
        DeclaredType::Object => structural == Some(kind::OBJECT) || !from_json,
    }
}

fn name_of(d: &Declared) -> &'static str {
    match d.ty {
        DeclaredType::Integer => "integer",
        DeclaredType::Number => "number",
        DeclaredType::Boolean => "boolean",
        DeclaredType::String => "string",
        DeclaredType::Array => "array",
        DeclaredType::Object => "object",
        DeclaredType::Any => "any",
    }
}

/// The reason `text` breaks `d`, if it does.
fn breaks(
    d: &Declared,
    text: &str,
    structural: Option<u16>,
    from_json: bool,
) -> Option<(Kind, String)> {
    if !type_ok(d.ty, text, structural, from_json) {
        return Some((Kind::SchemaTypeMismatch, format!("declared {}", name_of(d))));
    }
    if structural.is_some() {
        return None;
    }
    if let Some(e) = &d.enumeration
        && !e.iter().any(|v| v == text)
    {
        return Some((
            Kind::SchemaValueAnomalous,
            format!("not one of the {} declared values", e.len()),
        ));
    }
    let len = text.chars().count() as u64;
    if d.length.0.is_some_and(|m| len < m) || d.length.1.is_some_and(|m| len > m) {
        return Some((
            Kind::SchemaValueAnomalous,
            format!("{len} characters, outside the declared length"),
        ));
    }
    if let Ok(n) = text.parse::<f64>()
        && matches!(d.ty, DeclaredType::Integer | DeclaredType::Number)
        && (d.range.0.is_some_and(|m| n < m) || d.range.1.is_some_and(|m| n > m))
    {
        return Some((
            Kind::SchemaValueAnomalous,
            "outside the declared range".into(),
        ));
    }
    None
}

/// Whether the request carries header `name` (lower case), including
/// the ones the parser keeps in fields of their own.
fn header_present(req: &Request, name: &str) -> bool {
    match name {
        "authorization" => req.credentials.is_some(),
        "user-agent" => req.user_agent.is_some(),
        "host" => req.host.is_some(),
        "cookie" => req.cookies.is_some(),
        "content-type" => req.content_type.is_some(),
        "content-length" => req.content_length.is_some(),
        "x-api-key" | "api-key" => req.api_key.is_some(),
        "x-forwarded-for" => !req.forwarded_for.is_empty(),
        _ => req
            .other_headers()
            .any(|(n, _)| n.eq_ignore_ascii_case(name)),
    }
}

fn violation(kind: Kind, place: &'static str, parameter: &str, reason: String) -> Violation {
    Violation {
        kind,
        place,
        parameter: parameter.to_string(),
        reason,
        declared: true,
    }
}

/// Appends what `req` breaks of `op` to `out`.
pub fn check(
    op: &Operation,
    req: &Request,
    ps: &[Param<'_>],
    body_checked: bool,
    out: &mut Vec<Violation>,
) {
    let json_body = req
        .content_type
        .as_deref()
        .is_some_and(|c| c.to_ascii_lowercase().contains("json"));
    for p in ps {
        let place = p.place.as_str();
        // Nested members are not declared here; cookies and headers
        // beyond the declared ones are the client's business.
        let top = !p.name.contains('.') && !p.name.contains("[]");
        let decl = op
            .inputs
            .iter()
            .find(|d| d.place == place && d.name == p.name);
        match decl {
            Some(d) => {
                if let Some((kind, reason)) =
                    breaks(d, &p.text, p.structural, place == "body" && json_body)
                {
                    out.push(violation(kind, place, &p.name, reason));
                }
            }
            None if top && (place == "query" || (place == "body" && op.body_closed)) => {
                out.push(violation(
                    Kind::SchemaUnknownParameter,
                    place,
                    &p.name,
                    "not declared by the OpenAPI operation".into(),
                ));
            }
            None => {}
        }
    }
    for (name, value) in Document::path_values(op, &req.path) {
        let text = percent_encoding::percent_decode_str(value).decode_utf8_lossy();
        if let Some(d) = op
            .inputs
            .iter()
            .find(|d| d.place == "path" && d.name == name)
            && let Some((kind, reason)) = breaks(d, &text, None, false)
        {
            out.push(violation(kind, "path", name, reason));
        }
    }
    for d in op.inputs.iter().filter(|d| d.required) {
        let present = match d.place {
            "path" => true,
            "header" => header_present(req, &d.name),
            "body" if !body_checked => true,
            place => ps
                .iter()
                .any(|p| p.place.as_str() == place && p.name == d.name),
        };
        if !present {
            out.push(violation(
                Kind::SchemaMissingRequired,
                d.place,
                &d.name,
                "declared required".into(),
            ));
        }
    }
}
