//! OpenAPI 3 documents (JSON or YAML) as the analysers read them: the
//! operations (`METHOD /path/{param}`) that name endpoints for sequences
//! and schemas, and what each operation declares of its inputs (query,
//! header, cookie and path parameters; the JSON request body's
//! properties), with the constraints the schema model checks. `$ref`s to
//! `#/components/...` are followed (to a bounded depth); other
//! references and unknown keywords are ignored.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// An OpenAPI file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum OpenApiError {
    /// Unreadable.
    #[error("OpenAPI file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Neither JSON nor YAML, or no `paths`.
    #[error("OpenAPI file {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// The type a declaration gives a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeclaredType {
    /// `integer`.
    Integer,
    /// `number`.
    Number,
    /// `boolean`.
    Boolean,
    /// `string`.
    String,
    /// `array`.
    Array,
    /// `object`.
    Object,
    /// No `type` (anything goes).
    Any,
}

/// One declared input.
#[derive(Clone, Debug, PartialEq)]
pub struct Declared {
    /// Where: `query`, `header`, `cookie`, `path`, or `body` (a JSON
    /// body's top-level property).
    pub place: &'static str,
    /// The name (header names in lower case).
    pub name: String,
    /// Whether a request must carry it.
    pub required: bool,
    /// Its type.
    pub ty: DeclaredType,
    /// `enum`, as strings.
    pub enumeration: Option<Vec<String>>,
    /// `minLength`/`maxLength` of strings.
    pub length: (Option<u64>, Option<u64>),
    /// `minimum`/`maximum` of numbers.
    pub range: (Option<f64>, Option<f64>),
}

/// One operation of the document.
#[derive(Clone, Debug)]
pub struct Operation {
    /// Upper-case method.
    pub method: String,
    /// Path segments: `Some(literal)` or `None` for a `{param}`.
    pub segments: Vec<Option<String>>,
    /// The names of the `{param}` segments, at their positions.
    pub vars: Vec<Option<String>>,
    /// `METHOD /path/{param}` as written in the document.
    pub name: String,
    /// Declared inputs.
    pub inputs: Vec<Declared>,
    /// The JSON body is declared closed (`additionalProperties: false`).
    pub body_closed: bool,
    /// A request body is declared (of any media type).
    pub has_body: bool,
}

/// The operations of one document.
#[derive(Clone, Debug, Default)]
pub struct Document {
    /// Most literal segments first: `/users/me` before `/users/{id}`.
    pub operations: Vec<Operation>,
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];
/// `$ref` hops followed at most (a cycle ends here).
const MAX_REF_DEPTH: usize = 8;

fn resolve<'a>(doc: &'a Value, mut v: &'a Value) -> &'a Value {
    for _ in 0..MAX_REF_DEPTH {
        let Some(r) = v.get("$ref").and_then(Value::as_str) else {
            return v;
        };
        let Some(pointer) = r.strip_prefix('#') else {
            return v;
        };
        match doc.pointer(pointer) {
            Some(target) => v = target,
            None => return v,
        }
    }
    v
}

fn declared_type(schema: &Value) -> DeclaredType {
    let ty = match &schema["type"] {
        Value::String(s) => s.as_str(),
        // OpenAPI 3.1: `type: [string, "null"]`.
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or(""),
        _ => "",
    };
    match ty {
        "integer" => DeclaredType::Integer,
        "number" => DeclaredType::Number,
        "boolean" => DeclaredType::Boolean,
        "string" => DeclaredType::String,
        "array" => DeclaredType::Array,
        "object" => DeclaredType::Object,
        _ => DeclaredType::Any,
    }
}

fn input(doc: &Value, place: &'static str, name: &str, required: bool, schema: &Value) -> Declared {
    let schema = resolve(doc, schema);
    let enumeration = schema["enum"].as_array().map(|a| {
        a.iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .collect()
    });
    Declared {
        place,
        name: if place == "header" {
            name.to_ascii_lowercase()
        } else {
            name.to_string()
        },
        required,
        ty: declared_type(schema),
        enumeration,
        length: (schema["minLength"].as_u64(), schema["maxLength"].as_u64()),
        range: (schema["minimum"].as_f64(), schema["maximum"].as_f64()),
    }
}

/// Parameters of an operation (its own and its path item's, the
/// operation's winning on the same name and place).
fn parameters(doc: &Value, item: &Value, op: &Value, out: &mut Vec<Declared>) {
    for list in [&op["parameters"], &item["parameters"]] {
        for p in list.as_array().into_iter().flatten() {
            let p = resolve(doc, p);
            let place = match p["in"].as_str() {
                Some("query") => "query",
                Some("header") => "header",
                Some("cookie") => "cookie",
                Some("path") => "path",
                _ => continue,
            };
            let Some(name) = p["name"].as_str() else {
                continue;
            };
            if out.iter().any(|d| d.place == place && d.name == name) {
                continue;
            }
            let required = p["required"].as_bool().unwrap_or(place == "path");
            out.push(input(doc, place, name, required, &p["schema"]));
        }
    }
}

/// The JSON body's top-level properties; whether it is closed; whether a
/// body is declared at all.
fn body(doc: &Value, op: &Value, out: &mut Vec<Declared>) -> (bool, bool) {
    let rb = resolve(doc, &op["requestBody"]);
    let Some(content) = rb["content"].as_object() else {
        return (false, false);
    };
    let Some(schema) = content
        .iter()
        .find(|(m, _)| m.contains("json"))
        .map(|(_, c)| resolve(doc, &c["schema"]))
    else {
        return (false, true);
    };
    let required: Vec<&str> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    for (name, s) in schema["properties"].as_object().into_iter().flatten() {
        out.push(input(
            doc,
            "body",
            name,
            required.contains(&name.as_str()),
            s,
        ));
    }
    (schema["additionalProperties"] == Value::Bool(false), true)
}

impl Document {
    /// Reads a document.
    pub fn load(path: &Path) -> Result<Self, OpenApiError> {
        let text = std::fs::read_to_string(path).map_err(|source| OpenApiError::Read {
            path: path.into(),
            source,
        })?;
        Self::parse(&text).map_err(|message| OpenApiError::Invalid {
            path: path.into(),
            message,
        })
    }

    /// Parses a document's text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let doc: Value = serde_json::from_str(text)
            .or_else(|_| serde_yaml_ng::from_str(text))
            .map_err(|e| format!("neither JSON nor YAML: {e}"))?;
        let paths = doc["paths"]
            .as_object()
            .ok_or_else(|| "no `paths` object".to_string())?;
        let mut operations = Vec::new();
        for (p, item) in paths {
            let item = resolve(&doc, item);
            let segments: Vec<Option<String>> = p
                .trim_start_matches('/')
                .split('/')
                .map(|s| (!(s.starts_with('{') && s.ends_with('}'))).then(|| s.to_string()))
                .collect();
            let vars: Vec<Option<String>> = p
                .trim_start_matches('/')
                .split('/')
                .map(|s| {
                    s.strip_prefix('{')
                        .and_then(|s| s.strip_suffix('}'))
                        .map(str::to_string)
                })
                .collect();
            for m in METHODS {
                let Some(op) = item.get(m) else { continue };
                let method = m.to_ascii_uppercase();
                let mut inputs = Vec::new();
                parameters(&doc, item, op, &mut inputs);
                let (body_closed, has_body) = body(&doc, op, &mut inputs);
                operations.push(Operation {
                    name: format!("{method} {p}"),
                    method,
                    segments: segments.clone(),
                    vars: vars.clone(),
                    inputs,
                    body_closed,
                    has_body,
                });
            }
        }
        operations.sort_by_key(|t| std::cmp::Reverse(t.segments.iter().flatten().count()));
        Ok(Self { operations })
    }

    /// The operation a request (method, path without query) calls.
    pub fn find(&self, method: &str, path: &str) -> Option<&Operation> {
        let path = path.split(['?', '#']).next().unwrap_or("");
        let segs = path.trim_start_matches('/').split('/');
        let n = segs.clone().count();
        self.operations.iter().find(|t| {
            t.method == method
                && t.segments.len() == n
                && t.segments
                    .iter()
                    .zip(segs.clone())
                    .all(|(lit, s)| lit.as_deref().is_none_or(|l| l == s))
        })
    }

    /// The values of an operation's `{param}` segments in `path`.
    pub fn path_values<'p>(op: &'p Operation, path: &'p str) -> Vec<(&'p str, &'p str)> {
        let path = path.split(['?', '#']).next().unwrap_or("");
        op.vars
            .iter()
            .zip(path.trim_start_matches('/').split('/'))
            .filter_map(|(v, s)| Some((v.as_deref()?, s)))
            .collect()
    }

    /// No operations.
    pub fn is_empty(&self) -> bool {
        self.operations.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r##"
openapi: 3.0.3
paths:
  /accounts/{id}:
    parameters:
      - {name: id, in: path, schema: {type: integer}}
    get:
      parameters:
        - {name: fields, in: query, schema: {type: string, maxLength: 40}}
        - {name: X-Tenant, in: header, required: true, schema: {type: string}}
  /accounts/me:
    get: {}
  /transfers:
    post:
      requestBody:
        content:
          application/json:
            schema: {$ref: "#/components/schemas/Transfer"}
components:
  schemas:
    Transfer:
      type: object
      additionalProperties: false
      required: [amount, to]
      properties:
        amount: {type: number, minimum: 0}
        to: {type: string}
        currency: {type: string, enum: [EUR, USD]}
"##;

    #[test]
    fn operations_inputs_and_refs() {
        let d = Document::parse(SPEC).unwrap();
        assert_eq!(
            d.find("GET", "/accounts/me").unwrap().name,
            "GET /accounts/me"
        );
        let acc = d.find("GET", "/accounts/42?x=1").unwrap();
        assert_eq!(acc.name, "GET /accounts/{id}");
        let names: Vec<_> = acc
            .inputs
            .iter()
            .map(|i| (i.place, i.name.as_str()))
            .collect();
        assert_eq!(
            names,
            [("query", "fields"), ("header", "x-tenant"), ("path", "id")]
        );
        assert!(acc.inputs[1].required);
        assert_eq!(acc.inputs[0].length, (None, Some(40)));
        let t = d.find("POST", "/transfers").unwrap();
        assert!(t.body_closed && t.has_body);
        let amount = t.inputs.iter().find(|i| i.name == "amount").unwrap();
        assert_eq!(
            (amount.ty, amount.required, amount.range.0),
            (DeclaredType::Number, true, Some(0.0))
        );
        let cur = t.inputs.iter().find(|i| i.name == "currency").unwrap();
        assert_eq!(
            cur.enumeration.as_deref(),
            Some(&["EUR".to_string(), "USD".to_string()][..])
        );
        assert!(d.find("DELETE", "/transfers").is_none());
        assert_eq!(Document::path_values(acc, "/accounts/42"), [("id", "42")]);
        assert!(Document::parse("openapi: 3.0.0\n").is_err());
    }

    #[test]
    fn a_reference_cycle_ends() {
        let d =
            Document::parse(r##"{"paths": {"/a": {"$ref": "#/paths/~1a"}}, "components": {}}"##)
                .unwrap();
        assert!(d.is_empty());
    }
}
