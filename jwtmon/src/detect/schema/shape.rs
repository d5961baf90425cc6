//! Value shapes: the kind of one value (integer, UUID, identifier, free
//! text, JSON object, ...), the character classes it uses, and what the
//! model learns of a parameter's values over time: the kinds seen, the
//! classes seen, the length and numeric range, and (while small) the set
//! of values, each value with the principals that used it. A value is
//! judged against the shape ([`Shape::judge`]); the reason names the
//! kind or class, never the value.

use serde::{Deserialize, Serialize};

/// Value kinds, most specific first; a kind is one bit.
pub mod kind {
    /// `""` or JSON `null`: fits every shape.
    pub const EMPTY: u16 = 1;
    /// `true` / `false`.
    pub const BOOL: u16 = 1 << 1;
    /// An integer.
    pub const INT: u16 = 1 << 2;
    /// A decimal number.
    pub const FLOAT: u16 = 1 << 3;
    /// A UUID.
    pub const UUID: u16 = 1 << 4;
    /// Hex digits (8 or more, with a letter).
    pub const HEX: u16 = 1 << 5;
    /// An ISO 8601 date or time.
    pub const DATE: u16 = 1 << 6;
    /// An e-mail address.
    pub const EMAIL: u16 = 1 << 7;
    /// A URL with a scheme.
    pub const URL: u16 = 1 << 8;
    /// Letters only.
    pub const ALPHA: u16 = 1 << 9;
    /// Letters, digits, `-`, `_`, `.`.
    pub const IDENT: u16 = 1 << 10;
    /// A base64/base64url-like token.
    pub const TOKEN: u16 = 1 << 11;
    /// Anything printable.
    pub const TEXT: u16 = 1 << 12;
    /// A JSON object.
    pub const OBJECT: u16 = 1 << 13;
    /// A JSON array.
    pub const ARRAY: u16 = 1 << 14;

    /// Names, for reports.
    pub const NAMES: [(u16, &str); 15] = [
        (EMPTY, "empty"),
        (BOOL, "boolean"),
        (INT, "integer"),
        (FLOAT, "number"),
        (UUID, "uuid"),
        (HEX, "hex"),
        (DATE, "date"),
        (EMAIL, "email"),
        (URL, "url"),
        (ALPHA, "alpha"),
        (IDENT, "identifier"),
        (TOKEN, "token"),
        (TEXT, "text"),
        (OBJECT, "object"),
        (ARRAY, "array"),
    ];
}

/// Character classes; a class is one bit.
pub mod class {
    /// `0-9`.
    pub const DIGIT: u16 = 1;
    /// Letters (ASCII).
    pub const LETTER: u16 = 1 << 1;
    /// Space and tab.
    pub const SPACE: u16 = 1 << 2;
    /// `- _ .`
    pub const SAFE: u16 = 1 << 3;
    /// `, : ; / @ + ! ? # * ~`
    pub const PUNCT: u16 = 1 << 4;
    /// Quotes and backtick.
    pub const QUOTE: u16 = 1 << 5;
    /// `< >`.
    pub const ANGLE: u16 = 1 << 6;
    /// `( ) [ ] { }`.
    pub const BRACKET: u16 = 1 << 7;
    /// `= & | $ % ^ \`.
    pub const OPERATOR: u16 = 1 << 8;
    /// Control bytes: CR, LF, NUL, ...
    pub const CONTROL: u16 = 1 << 9;
    /// Non-ASCII.
    pub const NON_ASCII: u16 = 1 << 10;

    /// Names, for reports.
    pub const NAMES: [(u16, &str); 11] = [
        (DIGIT, "digits"),
        (LETTER, "letters"),
        (SPACE, "spaces"),
        (SAFE, "-_."),
        (PUNCT, "punctuation"),
        (QUOTE, "quotes"),
        (ANGLE, "angle brackets"),
        (BRACKET, "brackets"),
        (OPERATOR, "operators"),
        (CONTROL, "control characters"),
        (NON_ASCII, "non-ASCII"),
    ];
}

/// Names of the bits set in `bits`.
pub fn names(bits: u16, table: &[(u16, &'static str)]) -> Vec<&'static str> {
    table
        .iter()
        .filter(|(b, _)| bits & b != 0)
        .map(|(_, n)| *n)
        .collect()
}

/// The classes of `s`.
pub fn classes(s: &str) -> u16 {
    let mut c = 0;
    for b in s.bytes() {
        c |= match b {
            b'0'..=b'9' => class::DIGIT,
            b'a'..=b'z' | b'A'..=b'Z' => class::LETTER,
            b' ' => class::SPACE,
            b'-' | b'_' | b'.' => class::SAFE,
            b',' | b':' | b';' | b'/' | b'@' | b'+' | b'!' | b'?' | b'#' | b'*' | b'~' => {
                class::PUNCT
            }
            b'\'' | b'"' | b'`' => class::QUOTE,
            b'<' | b'>' => class::ANGLE,
            b'(' | b')' | b'[' | b']' | b'{' | b'}' => class::BRACKET,
            b'=' | b'&' | b'|' | b'$' | b'%' | b'^' | b'\\' => class::OPERATOR,
            b'\t' => class::SPACE,
            0..0x20 | 0x7f => class::CONTROL,
            _ => class::NON_ASCII,
        };
    }
    c
}

fn is_int(s: &str) -> bool {
    let d = s.strip_prefix('-').unwrap_or(s);
    !d.is_empty() && d.len() <= 19 && d.bytes().all(|b| b.is_ascii_digit())
}

fn is_float(s: &str) -> bool {
    is_int(s)
        || (s.bytes().any(|b| b.is_ascii_digit())
            && s.len() <= 32
            && s.parse::<f64>().is_ok_and(f64::is_finite))
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn is_hex(s: &str) -> bool {
    s.len() >= 8 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let date = b.len() >= 10
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10);
    date && (b.len() == 10
        || (matches!(b[10], b'T' | b' ')
            && b[11..]
                .iter()
                .all(|c| c.is_ascii_digit() || matches!(c, b':' | b'.' | b'+' | b'-' | b'Z'))))
}

fn is_email(s: &str) -> bool {
    let Some((user, host)) = s.split_once('@') else {
        return false;
    };
    !user.is_empty()
        && host.contains('.')
        && !host.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"@.-_+".contains(&b))
}

fn is_url(s: &str) -> bool {
    s.split_once("://").is_some_and(|(scheme, rest)| {
        !scheme.is_empty()
            && scheme.len() <= 10
            && scheme.bytes().all(|b| b.is_ascii_alphabetic())
            && !rest.is_empty()
            && !rest.bytes().any(|b| b <= b' ' || b == 0x7f)
    })
}

fn is_ident(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

fn is_token(s: &str) -> bool {
    s.len() >= 16
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.+/=".contains(&b))
}

/// Whether `s` is acceptable as `k` (a wider kind accepts the narrower
/// ones: a number accepts integers, an identifier accepts integers).
pub fn fits(k: u16, s: &str) -> bool {
    match k {
        kind::EMPTY => s.is_empty(),
        kind::BOOL => matches!(s, "true" | "false"),
        kind::INT => is_int(s),
        kind::FLOAT => is_float(s),
        kind::UUID => is_uuid(s),
        kind::HEX => is_hex(s),
        kind::DATE => is_date(s),
        kind::EMAIL => is_email(s),
        kind::URL => is_url(s),
        kind::ALPHA => !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphabetic()),
        kind::IDENT => is_ident(s),
        kind::TOKEN => is_token(s) || is_ident(s),
        // Control bytes are judged on their own (`Misfit::Control`).
        kind::TEXT => true,
        _ => false,
    }
}

/// The most specific kind of a text value.
pub fn of_text(s: &str) -> u16 {
    const ORDER: [u16; 13] = [
        kind::EMPTY,
        kind::BOOL,
        kind::INT,
        kind::FLOAT,
        kind::UUID,
        kind::HEX,
        kind::DATE,
        kind::EMAIL,
        kind::URL,
        kind::ALPHA,
        kind::IDENT,
        kind::TOKEN,
        kind::TEXT,
    ];
    ORDER
        .into_iter()
        .find(|k| fits(*k, s))
        .unwrap_or(kind::TEXT)
}

/// One value as the model sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Value<'a> {
    /// Its kind.
    pub kind: u16,
    /// Its text (empty for objects and arrays).
    pub text: &'a str,
    /// Its number, when it is one.
    pub number: Option<f64>,
}

impl<'a> Value<'a> {
    /// A text value (query, form, header, cookie, JSON string).
    pub fn text(s: &'a str) -> Self {
        let kind = of_text(s);
        let number = (kind & (kind::INT | kind::FLOAT) != 0)
            .then(|| s.parse().ok())
            .flatten();
        Self {
            kind,
            text: s,
            number,
        }
    }

    /// A JSON value with no text (object, array, null).
    pub fn structural(kind: u16) -> Self {
        Self {
            kind,
            text: "",
            number: None,
        }
    }
}

/// Distinct values remembered per parameter; beyond it the set is open.
pub const MAX_VALUES: usize = 12;
/// Principals remembered per value (two prove it is not one user's own).
const VALUE_PRINCIPALS: usize = 2;

/// One value of a small enumeration.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Seen {
    /// Hash of the value (never the value).
    pub hash: u64,
    /// Times seen.
    pub count: u64,
    /// Short hashes of the principals that used it (at most two).
    pub principals: Vec<u32>,
}

/// What is learnt of one parameter's values.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Shape {
    /// Values learnt from.
    pub count: u64,
    /// Kinds seen (bits of [`kind`]).
    pub kinds: u16,
    /// Character classes seen (bits of [`class`]).
    pub classes: u16,
    /// Shortest and longest text.
    pub len: (u32, u32),
    /// Smallest and largest number.
    pub range: Option<(f64, f64)>,
    /// The distinct values while there are at most [`MAX_VALUES`]; `None`
    /// once there were more.
    pub values: Option<Vec<Seen>>,
}

/// Why a value does not fit a shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Misfit {
    /// Its kind is none the shape accepts.
    Kind {
        /// Kinds learnt.
        expected: Vec<&'static str>,
        /// The value's kind.
        seen: &'static str,
    },
    /// It is far longer than any value learnt.
    Length {
        /// Its length.
        len: usize,
        /// Longest learnt.
        max: u32,
    },
    /// Control characters (CR, LF, NUL) where none were ever seen.
    Control,
    /// Negative where only non-negative numbers were seen, or far
    /// beyond the learnt range.
    Range,
    /// Not one of the few values every principal uses.
    Enumeration {
        /// How many values are known.
        known: usize,
    },
}

impl Misfit {
    /// `schema_type_mismatch` (kinds) or `schema_value_anomalous`.
    pub fn is_type(&self) -> bool {
        matches!(self, Misfit::Kind { .. })
    }

    /// A key for widening votes (one per way of not fitting).
    pub fn vote_key(&self, v: &Value<'_>) -> u64 {
        match self {
            Misfit::Kind { .. } => u64::from(v.kind),
            Misfit::Length { len, .. } => 0x1_0000 + (*len as u64).next_power_of_two(),
            Misfit::Control => 0x2_0000,
            Misfit::Range => 0x3_0000,
            Misfit::Enumeration { .. } => 0x4_0000 ^ crate::detect::schema::hash(v.text),
        }
    }

    /// The reason, for the finding's evidence.
    pub fn reason(&self) -> String {
        match self {
            Misfit::Kind { expected, seen } => {
                format!("a {seen} value where only {} were seen", expected.join("/"))
            }
            Misfit::Length { len, max } => {
                format!("{len} characters where at most {max} were seen")
            }
            Misfit::Control => "control characters (CR, LF, NUL) where none were seen".into(),
            Misfit::Range => "a number outside the range seen".into(),
            Misfit::Enumeration { known } => {
                format!("not one of the {known} values every client uses")
            }
        }
    }
}

fn kinds_accept(kinds: u16, v: &Value<'_>) -> bool {
    if v.kind == kind::EMPTY || kinds & v.kind != 0 {
        return true;
    }
    if v.kind & (kind::OBJECT | kind::ARRAY) != 0 {
        return false;
    }
    kind::NAMES
        .iter()
        .filter(|(b, _)| kinds & b != 0 && *b & (kind::OBJECT | kind::ARRAY) == 0)
        .any(|(b, _)| fits(*b, v.text))
}

impl Shape {
    /// Learns one value, used by `principal`.
    pub fn learn(&mut self, v: &Value<'_>, principal: u32, value_hash: u64) {
        let len = v.text.len().min(u32::MAX as usize) as u32;
        if self.count == 0 {
            self.len = (len, len);
            self.values = Some(Vec::new());
        }
        self.count += 1;
        if v.kind != kind::EMPTY {
            self.kinds |= v.kind;
        }
        self.classes |= classes(v.text);
        self.len = (self.len.0.min(len), self.len.1.max(len));
        if let Some(n) = v.number {
            self.range = Some(self.range.map_or((n, n), |(lo, hi)| (lo.min(n), hi.max(n))));
        }
        if let Some(values) = &mut self.values {
            if let Some(s) = values.iter_mut().find(|s| s.hash == value_hash) {
                s.count += 1;
                if s.principals.len() < VALUE_PRINCIPALS && !s.principals.contains(&principal) {
                    s.principals.push(principal);
                }
            } else if values.len() < MAX_VALUES {
                values.push(Seen {
                    hash: value_hash,
                    count: 1,
                    principals: vec![principal],
                });
            } else {
                self.values = None;
            }
        }
    }

    /// A closed enumeration: few words (not numbers, not free text) over
    /// many samples, each used by more than one principal (a per-user
    /// value, such as an account id, is no enumeration).
    fn closed(&self, min_samples: u64) -> Option<&[Seen]> {
        let values = self.values.as_deref()?;
        let enough = self.count >= min_samples.max(20 * values.len() as u64);
        let shared = values
            .iter()
            .all(|s| s.principals.len() >= VALUE_PRINCIPALS);
        let words = self.kinds & !(kind::ALPHA | kind::IDENT | kind::EMPTY) == 0;
        (enough && shared && words && !values.is_empty()).then_some(values)
    }

    /// Whether `v` fits what was learnt (judged once `count >=
    /// min_samples`).
    pub fn judge(&self, v: &Value<'_>, value_hash: u64, min_samples: u64) -> Option<Misfit> {
        if self.count < min_samples || v.kind == kind::EMPTY {
            return None;
        }
        if !kinds_accept(self.kinds, v) {
            return Some(Misfit::Kind {
                expected: names(self.kinds, &kind::NAMES),
                seen: names(v.kind, &kind::NAMES)
                    .first()
                    .copied()
                    .unwrap_or("other"),
            });
        }
        if classes(v.text) & class::CONTROL != 0 && self.classes & class::CONTROL == 0 {
            return Some(Misfit::Control);
        }
        let max = self.len.1;
        let len = v.text.len();
        if len as u64 > u64::from(max).saturating_mul(2).max(u64::from(max) + 16) {
            return Some(Misfit::Length { len, max });
        }
        if let (Some(n), Some((lo, hi))) = (v.number, self.range) {
            let scale = lo.abs().max(hi.abs()).max(1.0);
            if (lo >= 0.0 && n < 0.0) || n.abs() > 100.0 * scale {
                return Some(Misfit::Range);
            }
        }
        if let Some(values) = self.closed(min_samples)
            && !values.iter().any(|s| s.hash == value_hash)
        {
            return Some(Misfit::Enumeration {
                known: values.len(),
            });
        }
        None
    }

    /// Accepts what `m` refused (enough principals voted for it).
    pub fn widen(&mut self, m: &Misfit, v: &Value<'_>) {
        match m {
            Misfit::Kind { .. } => self.kinds |= v.kind,
            Misfit::Length { len, .. } => self.len.1 = self.len.1.max(*len as u32),
            Misfit::Control => self.classes |= class::CONTROL,
            Misfit::Range => {
                if let (Some(n), Some((lo, hi))) = (v.number, self.range) {
                    self.range = Some((lo.min(n), hi.max(n)));
                }
            }
            Misfit::Enumeration { .. } => self.values = None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_of_values() {
        for (s, k) in [
            ("", kind::EMPTY),
            ("42", kind::INT),
            ("-3.5", kind::FLOAT),
            ("true", kind::BOOL),
            ("5f0e6c1e-8a4b-4c3d-9e2f-0a1b2c3d4e5f", kind::UUID),
            ("deadbeef01", kind::HEX),
            ("2026-12-01", kind::DATE),
            ("2026-12-01T10:00:00Z", kind::DATE),
            ("a.b@example.com", kind::EMAIL),
            ("https://example.com/x?y=1", kind::URL),
            ("desc", kind::ALPHA),
            ("acct_123-x", kind::IDENT),
            ("dGhpcyBpcyBhIHRva2Vu+/==", kind::TOKEN),
            ("hello world, again", kind::TEXT),
            ("1' OR '1'='1", kind::TEXT),
        ] {
            assert_eq!(of_text(s), k, "{s}");
        }
        assert_eq!(of_text("a\r\nb"), kind::TEXT);
        assert_ne!(classes("a\r\nb") & class::CONTROL, 0);
    }

    fn learnt(values: &[&str], principals: u32) -> Shape {
        let mut s = Shape::default();
        for (i, v) in values.iter().cycle().take(200).enumerate() {
            s.learn(
                &Value::text(v),
                i as u32 % principals,
                crate::detect::schema::hash(v),
            );
        }
        s
    }

    fn judge(s: &Shape, v: &str) -> Option<Misfit> {
        s.judge(&Value::text(v), crate::detect::schema::hash(v), 50)
    }

    #[test]
    fn integers_refuse_text_and_objects() {
        let s = learnt(&["1", "17", "230", "4"], 5);
        assert_eq!(judge(&s, "99"), None);
        assert!(judge(&s, "1 OR 1=1").unwrap().is_type());
        assert!(
            s.judge(&Value::structural(kind::OBJECT), 0, 50)
                .unwrap()
                .is_type()
        );
        assert_eq!(judge(&s, "-5"), Some(Misfit::Range));
        assert_eq!(judge(&s, "99999999"), Some(Misfit::Range));
        // Too few samples: silent.
        assert_eq!(learnt(&["1"], 1).judge(&Value::text("x"), 0, 500), None);
    }

    #[test]
    fn text_takes_text_but_not_crlf_or_huge() {
        let s = learnt(&["a nice day", "it's fine", "ok"], 5);
        assert_eq!(judge(&s, "another line of words"), None);
        assert_eq!(judge(&s, "a\r\nSet-Cookie: x=1"), Some(Misfit::Control));
        assert!(matches!(
            judge(&s, &"x".repeat(200)),
            Some(Misfit::Length { .. })
        ));
    }

    #[test]
    fn enumerations_close_only_when_shared() {
        let shared = learnt(&["asc", "desc"], 7);
        assert_eq!(judge(&shared, "desc"), None);
        assert_eq!(
            judge(&shared, "sleep"),
            Some(Misfit::Enumeration { known: 2 })
        );
        // Each principal its own value (account ids): not an enumeration.
        let mut own = Shape::default();
        for i in 0..200u32 {
            let v = format!("acct{}", i % 5);
            own.learn(&Value::text(&v), i % 5, crate::detect::schema::hash(&v));
        }
        assert_eq!(judge(&own, "acct9"), None);
    }
}
