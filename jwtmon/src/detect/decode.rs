//! Decoding before matching: what a server or its framework would decode
//! before using a value, so an encoded payload looks like itself.
//! Percent-decoding to a fixed point (double and triple encoding), IIS
//! `%uXXXX`, HTML/XML character references, and base64 (standard or URL
//! alphabet, at each of its three alignments, so a payload cut out of a
//! longer blob decodes too). Every step is bounded by the value's length.

use std::borrow::Cow;

use base64::{
    Engine,
    engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
};

/// Most decoding rounds (a fourth level of encoding is left as it is).
const ROUNDS: usize = 3;
/// Shortest value tried as base64.
const MIN_BASE64: usize = 8;
/// Shortest base64 value whose decoded text is inspected (shorter ones
/// are only checked for a serialized Java object).
pub const MIN_BASE64_TEXT: usize = 8;
/// Longest value tried as base64.
const MAX_BASE64: usize = 64 << 10;

/// `%uXXXX` (IIS) decoded; other text kept.
fn percent_u(s: &str) -> Cow<'_, str> {
    if !s.contains("%u") && !s.contains("%U") {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find(['%']) {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let hex = tail
            .get(2..6)
            .filter(|_| matches!(tail.as_bytes().get(1), Some(b'u' | b'U')));
        if let Some(c) = hex
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .and_then(char::from_u32)
        {
            out.push(c);
            rest = &tail[6..];
        } else {
            out.push('%');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// HTML/XML character references: the five named ones, `&nbsp;`, and
/// decimal or hex numeric references (with or without the `;`).
pub fn entities(s: &str) -> Cow<'_, str> {
    if !s.contains('&') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let body = &rest[1..];
        let (c, used) = if let Some(num) = body.strip_prefix('#') {
            let (radix, digits) = match num.strip_prefix(['x', 'X']) {
                Some(h) => (16, h),
                None => (10, num),
            };
            let len = digits
                .bytes()
                .take_while(|b| b.is_ascii_digit() || (radix == 16 && b.is_ascii_hexdigit()))
                .count()
                .min(8);
            let prefix = 1 + usize::from(radix == 16);
            let c = u32::from_str_radix(&digits[..len], radix)
                .ok()
                .and_then(char::from_u32)
                .filter(|_| len > 0);
            let semi = usize::from(digits[len..].starts_with(';'));
            (c, 1 + prefix + len + semi)
        } else {
            let name_len = body.bytes().take_while(u8::is_ascii_alphabetic).count();
            // Names are matched case-insensitively (`&LBRACE;`), without
            // an allocation for the usual lower-case ones.
            let name = &body[..name_len];
            let folded;
            let name = if name.bytes().any(|b| b.is_ascii_uppercase()) {
                folded = name.to_ascii_lowercase();
                folded.as_str()
            } else {
                name
            };
            let c = match name {
                "quot" => Some('"'),
                "apos" => Some('\''),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "amp" => Some('&'),
                "nbsp" => Some(' '),
                "colon" => Some(':'),
                "lpar" => Some('('),
                "rpar" => Some(')'),
                "tab" => Some('\t'),
                "newline" => Some('\n'),
                "lbrace" | "lcub" => Some('{'),
                "rbrace" | "rcub" => Some('}'),
                "lsqb" | "lbrack" => Some('['),
                "rsqb" | "rbrack" => Some(']'),
                "dollar" => Some('$'),
                "sol" => Some('/'),
                "bsol" => Some('\\'),
                "period" => Some('.'),
                "comma" => Some(','),
                "semi" => Some(';'),
                "equals" => Some('='),
                "grave" => Some('`'),
                "verbar" | "vert" => Some('|'),
                "excl" => Some('!'),
                "quest" => Some('?'),
                "num" => Some('#'),
                "percnt" => Some('%'),
                "plus" => Some('+'),
                "ast" => Some('*'),
                "lowbar" => Some('_'),
                "hyphen" | "dash" => Some('-'),
                _ => None,
            };
            let semi = usize::from(body[name_len..].starts_with(';'));
            (c.filter(|_| semi == 1), 1 + name_len + semi)
        };
        if let Some(c) = c {
            out.push(c);
            rest = &rest[used.min(rest.len())..];
        } else {
            out.push('&');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Decoded bytes as text: UTF-8 when they are, else each byte the
/// Latin-1 character it names (so `%BC` stays `¼` for the charset checks
/// instead of becoming U+FFFD).
pub fn utf8_or_latin1(bytes: Cow<'_, [u8]>) -> Cow<'_, str> {
    match bytes {
        Cow::Borrowed(b) => match std::str::from_utf8(b) {
            Ok(s) => Cow::Borrowed(s),
            Err(_) => Cow::Owned(b.iter().map(|&c| char::from(c)).collect()),
        },
        Cow::Owned(b) => match String::from_utf8(b) {
            Ok(s) => Cow::Owned(s),
            Err(e) => Cow::Owned(e.into_bytes().iter().map(|&c| char::from(c)).collect()),
        },
    }
}

/// Percent-decoding (with `%uXXXX`) repeated until nothing changes, at
/// most [`ROUNDS`] times, then character references.
pub fn deep(s: &str) -> Cow<'_, str> {
    let mut cur: Cow<'_, str> = Cow::Borrowed(s);
    for _ in 0..ROUNDS {
        if !cur.contains('%') {
            break;
        }
        let u = percent_u(&cur).into_owned();
        let next = utf8_or_latin1(percent_encoding::percent_decode_str(&u).into()).into_owned();
        if next == *cur {
            break;
        }
        cur = Cow::Owned(next);
    }
    match entities(&cur) {
        Cow::Borrowed(_) => cur,
        Cow::Owned(o) => Cow::Owned(o),
    }
}

fn engine(alphabet: &base64::alphabet::Alphabet) -> GeneralPurpose {
    GeneralPurpose::new(
        alphabet,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    )
}

/// The bytes `v` decodes to as base64, at each alignment (the value as it
/// is, and as if one or two characters before it were cut off), when it
/// looks like base64 at all: only its alphabet, long enough, not a plain
/// word or number.
pub fn base64_bytes(v: &str) -> Vec<Vec<u8>> {
    let t = v.trim_end_matches('=');
    if t.len() < MIN_BASE64
        || t.len() > MAX_BASE64
        || !t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_'))
        || t.bytes().all(|b| b.is_ascii_lowercase())
        || t.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Vec::new();
    }
    let url = t.contains(['-', '_']);
    let e = if url {
        engine(&base64::alphabet::URL_SAFE)
    } else {
        engine(&base64::alphabet::STANDARD)
    };
    let mut out = Vec::new();
    for shift in 0..3 {
        let mut s = "A".repeat(shift);
        s.push_str(t);
        // A lone trailing character encodes no byte: cut it.
        let keep = s.len() - usize::from(s.len() % 4 == 1);
        if keep == 0 {
            continue;
        }
        if let Ok(b) = e.decode(&s[..keep]) {
            out.push(b);
        }
    }
    out
}

/// Text worth inspecting in decoded base64: printable for the most part
/// (binary garbage is not a payload), with non-printables as spaces.
pub fn printable(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    let total = text.chars().count();
    let good = text
        .chars()
        .filter(|c| !c.is_control() || c.is_ascii_whitespace())
        .filter(|c| *c != char::REPLACEMENT_CHARACTER)
        .count();
    (total >= 4 && good * 10 >= total * 8).then(|| {
        text.chars()
            .map(|c| {
                if c.is_control() && !c.is_ascii_whitespace() {
                    ' '
                } else {
                    c
                }
            })
            .collect()
    })
}

/// The value as the pattern sets read it: every non-ASCII character an
/// `x`. Attack syntax is ASCII, and the regex engine's fast path gives up
/// on Unicode word boundaries: a line of Cyrillic text cost 2-5 ms per
/// request before, 200 times an ASCII line (a denial of service). A
/// letter of another script stays a word character, as it is for `\b`.
pub fn ascii_view(s: &str) -> Cow<'_, str> {
    if s.is_ascii() {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars()
            .map(|c| if c.is_ascii() { c } else { 'x' })
            .collect(),
    )
}

/// The value with `/* ... */` comments removed (not replaced by a
/// space): how a filter that strips comments, or a keyword split by
/// them (`UN/**/ION SEL/**/ECT`), reads it.
pub fn without_inline_comments(s: &str) -> Option<String> {
    if !s.contains("/*") {
        return None;
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find("/*") {
        out.push_str(&rest[..at]);
        if let Some(end) = rest[at + 2..].find("*/") {
            rest = &rest[at + 2 + end + 2..];
        } else {
            rest = "";
            break;
        }
    }
    out.push_str(rest);
    Some(out)
}

/// The value with compatibility characters folded (NFKC: fullwidth
/// `＜ｓｃｒｉｐｔ＞` is `<script>`, circled and super/subscript digits are
/// digits) and the ideographic full stops a URL host parser reads as
/// dots; `None` when that changes nothing or yields no ASCII syntax.
pub fn compatibility(s: &str) -> Option<String> {
    use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfkc_quick};
    // Most text (any script) is already NFKC: no copy is made for it.
    if s.is_ascii() || (is_nfkc_quick(s.chars()) == IsNormalized::Yes && !s.contains('\u{3002}')) {
        return None;
    }
    let folded: String = s
        .nfkc()
        .map(|c| match c {
            '\u{3002}' | '\u{ff61}' => '.',
            c => c,
        })
        .collect();
    (folded != s && folded.bytes().any(|b| b.is_ascii_punctuation())).then_some(folded)
}

/// The value as a decoder that drops the high bit reads it (the US-ASCII
/// charset trick: `¼script¾` is `<script>`), for Latin-1 characters only;
/// `None` unless the value has the two that become `<` and `>` (`¼`, `¾`).
pub fn seven_bit(s: &str) -> Option<String> {
    if !(s.contains('\u{bc}') && s.contains('\u{be}')) {
        return None;
    }
    Some(
        s.chars()
            .map(|c| match u32::from(c) {
                0x80..=0xff => char::from((u32::from(c) & 0x7f) as u8),
                _ => c,
            })
            .collect(),
    )
}

/// JavaScript and JSON escapes undone: `\uXXXX`, `\u{X...}` and `\xHH`
/// (how a payload reaches an `eval` or a template as itself); `None` when
/// there is none.
pub fn js_escapes(s: &str) -> Option<String> {
    if !s.contains("\\u") && !s.contains("\\x") && !s.contains("\\U") && !s.contains("\\X") {
        return None;
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    let mut changed = false;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let (digits, skip) = match tail.as_bytes().get(1) {
            Some(b'u' | b'U') if tail.as_bytes().get(2) == Some(&b'{') => {
                let end = tail[3..].find('}').map(|e| e + 3);
                match end {
                    Some(e) if e > 3 && e <= 9 => (Some(&tail[3..e]), e + 1),
                    _ => (None, 1),
                }
            }
            Some(b'u' | b'U') => (tail.get(2..6), 6),
            Some(b'x' | b'X') => (tail.get(2..4), 4),
            _ => (None, 1),
        };
        if let Some(c) = digits
            .filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|d| u32::from_str_radix(d, 16).ok())
            .and_then(char::from_u32)
        {
            out.push(c);
            rest = &tail[skip..];
            changed = true;
        } else {
            out.push('\\');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    changed.then_some(out)
}

/// The Java serialization stream magic (`0xACED0005`).
pub fn java_serialized(bytes: &[u8]) -> bool {
    bytes.windows(4).any(|w| w == [0xac, 0xed, 0x00, 0x05])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_reaches_a_fixed_point() {
        assert_eq!(deep("%2527%2520OR"), "' OR");
        assert_eq!(deep("%252527"), "'");
        assert_eq!(deep("%u003cscript%u003e"), "<script>");
        assert_eq!(deep("100%"), "100%");
        assert_eq!(deep("%zz%"), "%zz%");
        assert_eq!(
            deep("&lt;svg onload&#x3d;alert(1)&gt;"),
            "<svg onload=alert(1)>"
        );
        assert_eq!(deep("&#106;avascript&colon;x"), "javascript:x");
        assert_eq!(
            deep("Tom &amp Jerry & co; &unknown;"),
            "Tom &amp Jerry & co; &unknown;"
        );
        assert_eq!(deep("&#99999999999;&#x;&"), "&#99999999999;&#x;&");
    }

    #[test]
    fn base64_at_every_alignment() {
        let texts: Vec<String> = base64_bytes("HJ1bnRpbWU")
            .iter()
            .filter_map(|b| printable(b))
            .collect();
        assert!(texts.iter().any(|t| t.contains("runtime")), "{texts:?}");
        assert!(base64_bytes("rO0ABXNy").iter().any(|b| java_serialized(b)));
        assert!(base64_bytes("KztAAUdz").iter().any(|b| java_serialized(b)));
        assert!(base64_bytes("helloworld").is_empty(), "a plain word");
        assert!(base64_bytes("123456789").is_empty(), "a number");
        assert!(base64_bytes("a b").is_empty());
        let url = base64_bytes("PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg");
        assert!(
            url.iter()
                .filter_map(|b| printable(b))
                .any(|t| t.contains("<script>"))
        );
        assert_eq!(printable(&[0xff, 0xfe, 0x00, 0x01, 0x02]), None);
        assert_eq!(
            without_inline_comments("1 UN/**/ION SEL/*x*/ECT a/*").as_deref(),
            Some("1 UNION SELECT a")
        );
        assert_eq!(without_inline_comments("plain"), None);
    }
}
