//! The injection families beyond SQL, XSS, traversal and shell commands:
//! each a kind with a small set of patterns over the decoded, lower-cased
//! value, and the places it applies to. Every pattern needs the family's
//! syntax (a lookup, a template expression, an entity declaration, a
//! wrapper URL, a gadget class), not a word alone. SSRF is judged by what
//! a URL's host is, not by its spelling ([`super::urls`]); JNDI lookups are resolved before
//! matching (`${${lower:j}ndi:...}`).

use std::sync::LazyLock;

use regex::{Regex, RegexSet};

use super::{super::fields::Place, urls::url_threat};
use crate::finding::Kind;

/// A family: its kind, its patterns (named) and where it looks.
struct Family {
    kind: Kind,
    names: Vec<&'static str>,
    set: RegexSet,
    places: &'static [Place],
}

/// Everywhere a request carries text.
const ANY: &[Place] = &[
    Place::Path,
    Place::Query,
    Place::Body,
    Place::Cookie,
    Place::Header,
];
/// Values a client chooses (not the path, not headers).
const VALUES: &[Place] = &[Place::Query, Place::Body, Place::Cookie];
/// Where a single line is expected (a line break is never part of it).
const LINES: &[Place] = &[Place::Path, Place::Query, Place::Cookie, Place::Header];

/// PHP functions that execute, evaluate, read or write.
const PHP_FUNCTIONS: &str = "(?:system|passthru|shell_exec|exec|popen|proc_open|pcntl_exec|phpinfo|base64_decode|gzinflate|gzuncompress|str_rot13|file_get_contents|file_put_contents|call_user_func(?:_array)?|create_function|preg_replace|show_source|highlight_file|fsockopen|pfsockopen|stream_socket_client|curl_init|curl_exec|assert|readfile|fpassthru|move_uploaded_file|unserialize|eval|strrev|hex2bin|zlib_decode|gzdecode|convert_uudecode|mb_ereg_replace|array_map|array_filter|register_shutdown_function|ob_start|putenv|ini_set|ini_get_all|set_include_path|get_defined_vars|phpversion|posix_getpwuid|posix_kill|include_once|require_once|strip_tags|str_replace)";
/// PHP functions named like words ("file", "include"): a call only with
/// the parenthesis right after the name.
const PHP_WORDS: &str = "(?:chr|dl|usort|symlink|chmod|unlink|fwrite|fopen|file|include|require|unpack|substr|printf|intval|crypt|filegroup|fileowner|fileperms|pi)";
/// PHP built-ins no other language or prose spells: a call even glued to
/// what precedes it (`FOOgzinflate(`).
const PHP_DISTINCT: &str = "(?:call_user_func(?:_array)?|p?fsockopen|gz(?:inflate|deflate|decode|encode|uncompress|compress|open|file)|bz(?:decompress|compress|open)|zlib_(?:decode|encode)|shell_exec|proc_open|pcntl_exec|base64_decode|str_rot13|file_(?:get|put)_contents|create_function|get_defined_(?:functions|vars|constants)|posix_[a-z]+|print_r|var_dump|var_export|phpinfo|assert_options|fopen|filegroup|fileowner|fileperms|gethostbyn?a[a-z]*|getmy(?:pid|uid|gid|inode)|debug_zval_dump|(?:class|method|property|function)_exists)";
/// The prefixes of PHP's extension functions (`array_diff`, `pg_query`,
/// `ldap_search`, `sodium_crypto_box`): `prefix_name(` is a PHP call.
const PHP_EXTENSIONS: &str = "(?:array|str|preg|mb|pg|ldap|odbc|sodium|tidy|zend|posix|date|zlib|curl|mysqli|socket|stream|proc|pcntl|func|ini|openssl|iconv|libxml|simplexml|apache|ftp|imap|exif|ctype|intl|gmp|bcmath|sqlite|oci|ssh2|finfo|opcache|apcu|spl|filter|mcrypt|xmlrpc|dom|pspell|readline|shmop|sem|shm|msg|gettext|fastcgi|litespeed|fpm|dba|enchant|gnupg|igbinary|msgpack|swoole|win32|file|is|php|ob|hash|highlight|mysql|mssql|sybase|ibase|fbsql|ifx|maxdb|cubrid|db2|ingres|sqlsrv|grapheme|idn)";

fn family(kind: Kind, places: &'static [Place], rules: &[(&'static str, &str)]) -> Family {
    Family {
        kind,
        names: rules.iter().map(|(n, _)| *n).collect(),
        set: RegexSet::new(rules.iter().map(|(_, r)| *r)).expect("patterns compile"),
        places,
    }
}

static FAMILIES: LazyLock<Vec<Family>> = LazyLock::new(|| {
    vec![
        family(
            Kind::InjectionCrlf,
            LINES,
            &[
                (
                    "header after a line break",
                    r"[\r\n]\s*[a-z0-9][a-z0-9_-]*\s*:",
                ),
                ("status line after a line break", r"[\r\n]\s*http/[0-9]"),
                (
                    "request line after a line break",
                    r"[\r\n]\s*(?:get|post|head|put|delete|options|connect|trace|patch)\s+\S+\s+http/[0-9]",
                ),
                (
                    "markup after a line break",
                    r"[\r\n]\s*<(?:html|script|body)",
                ),
            ],
        ),
        family(
            Kind::InjectionCrlf,
            &[Place::Path],
            &[("line break in the path", r"[\r\n]")],
        ),
        family(
            Kind::InjectionCrlf,
            &[Place::Query],
            // `?next=a%0Dredirect=evil`: a second parameter smuggled into
            // whatever the value is written to (a header, a log line, a
            // proxied query string).
            &[(
                "parameter after a line break",
                r"[\r\n]\s*[a-z_][a-z0-9_.-]*=",
            )],
        ),
        family(
            Kind::InjectionCrlf,
            ANY,
            &[(
                "request line in a value",
                r"(?:^|\s)(?:get|post|head|put|delete|options|connect|trace|patch)\s+(?:/|https?://)\S*\s+http/[0-9](?:\.[0-9])?\b",
            )],
        ),
        family(
            Kind::InjectionCrlf,
            VALUES,
            // `<meta http-equiv="Refresh" content="0; url=...">`: a value
            // written into a page sets a response header without a line
            // break (CRS 921130 files it with response splitting).
            &[(
                "response header as a meta tag",
                r#"<meta\b[^>]*\bhttp-equiv\s*=\s*["']?\s*(?:refresh|set-cookie)\b"#,
            )],
        ),
        family(
            Kind::InjectionCrlf,
            &[Place::Body],
            &[(
                "response header after a line break",
                r"[\r\n]\s*(?:set-cookie|location|content-(?:type|length)|refresh|transfer-encoding|x-xss-protection)\s*:|[\r\n]\s*http/1\.[01]\s+[1-5][0-9][0-9]",
            )],
        ),
        family(
            Kind::InjectionMail,
            VALUES,
            &[
                (
                    "smtp command after a line break",
                    r"[\r\n]\s*(?:mail\s+from|rcpt\s+to)\s*:|[\r\n]\s*(?:data|quit|rset|noop|starttls)\s*(?:[\r\n]|$)|[\r\n]\s*(?:helo|ehlo|vrfy|expn)\s+[a-z0-9.@<>_-]+\s*(?:[\r\n]|$)|[\r\n]\s*help\s+[a-z]+\s*(?:[\r\n]|$)",
                ),
                (
                    "imap command after a line break",
                    // A tag, a command and the arguments it takes (a
                    // sentence's "we search for" is not one).
                    r#"[\r\n]\s*[a-z0-9]{1,8}\s+(?:(?:select|examine|status|delete|rename|subscribe|unsubscribe|create|append|lsub|list)\s+(?:inbox\b|"[^"]*"|\S+\s+\()|(?:fetch|store|copy|move|uid)\s+[0-9*:,]+\s|search\s+(?:text|all|from|to|subject|body|since|before|unseen|seen|header|uid|flagged|unflagged|answered|deleted|recent|larger|smaller|keyword)\s|(?:login\s+\S+\s+\S+|authenticate\s+[a-z0-9_-]+)\s*(?:[\r\n]|$)|(?:logout|capability|noop|check|close|expunge|starttls|quit)\s*(?:[\r\n]|$))"#,
                ),
                (
                    "pop3 command after a line break",
                    r"[\r\n]\s*(?:(?:retr|dele|top|list|uidl)\s+[0-9]+(?:\s+[0-9]+)?|(?:user|pass)\s+\S+|apop\s+\S+\s+[0-9a-f]{32}|auth\s+[a-z0-9_-]+(?:\s+[a-z0-9+/=]+)?|stat|stls|capa)\s*(?:[\r\n]|$)",
                ),
            ],
        ),
        family(
            Kind::InjectionSsti,
            ANY,
            &[
                (
                    "template arithmetic",
                    r"(?:\{\{|\$\{|#\{|\*\{|@\()\s*[0-9]+\s*[*+/%-]\s*[0-9]+\s*(?:\}|\))",
                ),
                (
                    "template object access",
                    r"\{\{[^}]{0,200}(?:__class__|__mro__|__subclasses__|__globals__|__builtins__|__init__|\bconfig\b|\bself\b|\brequest\b|\blipsum\b|\bcycler\b|\bjoiner\b|\bnamespace\b|\|\s*attr\b|\[\s*['\x22]_)",
                ),
                (
                    "template statement",
                    r"\{%-?\s*(?:import|include|set|for|if|macro|debug|load|extends|block)\s",
                ),
                ("erb or jsp expression", r"<%[=#-]?\s*[^%]{1,200}%>"),
                (
                    "freemarker or velocity directive",
                    r"<#(?:assign|import|include|list|if|attempt)\b|#set\s*\(\s*\$|\$class\.inspect|freemarker\.template\.utility",
                ),
                (
                    "expression language object",
                    r"\$\{[^}]{0,200}(?:getclass|forname|getruntime|processbuilder|pagecontext|applicationscope|sessionscope|facescontext|\bt\s*\()",
                ),
                ("thymeleaf preprocessing", r"__\$\{[^}]{1,200}\}__"),
            ],
        ),
        family(
            Kind::InjectionXxe,
            &[Place::Body, Place::Query, Place::Cookie],
            &[
                (
                    "external entity",
                    r"<!entity\s+%?\s*[a-z0-9_.:-]+\s+(?:system|public)\b",
                ),
                ("parameter entity", r"<!entity\s+%"),
                (
                    "doctype with internal subset",
                    r"<!doctype\s+[a-z0-9_:-]+\s*\[\s*<!",
                ),
                (
                    "doctype with system id",
                    r"<!doctype\s+[a-z0-9_:-]+\s+system\s",
                ),
                (
                    "xinclude",
                    r"<xi:include\b|xmlns:xi\s*=\s*['\x22]http://www\.w3\.org/2001/xinclude",
                ),
            ],
        ),
        family(
            Kind::InjectionLdap,
            VALUES,
            &[
                (
                    "filter break",
                    r"\*\s*\)\s*\(\s*[|&!]?\s*\(?\s*[a-z][a-z0-9-]*\s*[~<>]?=",
                ),
                (
                    "filter injection",
                    r"\)\s*\(\s*[|&!]\s*\(\s*[a-z][a-z0-9-]*\s*[~<>]?=",
                ),
                (
                    // `val)(cn=admin`, `x)!(sn=*`, `admin)(|`: the value
                    // closes its filter and opens another.
                    "filter continued",
                    r"\)\s*[|&!]?\s*\(\s*(?:[|&!]\s*(?:\(|$)|[a-z][a-z0-9-]*\s*(?:[~<>]?=|>=|<=)|[&|]\s*\)|$)",
                ),
                ("object class wildcard", r"\(\s*objectclass\s*=\s*\*\s*\)"),
                (
                    "attribute wildcard close",
                    r"^\s*\*\s*\)\s*\(|\)\s*\(\s*[a-z][a-z0-9-]*\s*=\s*\*\s*\)?\s*$",
                ),
            ],
        ),
        family(
            Kind::InjectionSsi,
            ANY,
            &[(
                "ssi directive",
                r"<!--\s*#\s*(?:exec|include|echo|config|set|printenv|fsize|flastmod|if|elif)\b",
            )],
        ),
        family(
            Kind::InjectionPhp,
            ANY,
            &[
                (
                    "php open tag",
                    // `<?xml` opens PHP too when short tags are on, unless it
                    // is an XML declaration; a bare `<?` at the end waits
                    // for the rest.
                    r"<\?(?:php\b|=|\s|$)|<\?xml(?:[^\sv]|\s+[^\sv])|\[\\?/?php\]|\{/?php\}",
                ),
                (
                    // `touch/*a*/()`, `serialize#c\n()`, `symlink//c\n()`: a
                    // comment between a name and its call hides the call.
                    "call split by a comment",
                    r"\b[a-z_][a-z0-9_]*(?:\s*/\*(?s:.*?)\*/|//[^\n]*\n|#[^\n]*\n)(?:\s|/\*(?s:.*?)\*/|//[^\n]*\n|#[^\n]*\n)*\(",
                ),
                (
                    "dangerous function call",
                    // Whitespace, newlines and comments may sit between the
                    // name and its parenthesis (`exec //x\n (...)`).
                    &format!(
                        r"\b{PHP_FUNCTIONS}(?:\s|/\*(?s:.*?)\*/|//[^\n]*\n|#[^\n]*\n)*\(|\b{PHP_WORDS}\("
                    ),
                ),
                (
                    "php built-in call",
                    &format!(r"{PHP_DISTINCT}(?:\s|/\*(?s:.*?)\*/)*\("),
                ),
                (
                    // Prose puts a space or a word between a name and a
                    // parenthesis; PHP's snake-case extension names are
                    // not prose.
                    "php extension function call",
                    &format!(r"\b{PHP_EXTENSIONS}_[a-z0-9_]+(?:\s|/\*(?s:.*?)\*/)*\("),
                ),
                (
                    // `FILE\r\n()`, `assert (\n\n)`: an empty call, blanks
                    // or not between the name and its parenthesis.
                    "empty php call",
                    &format!(r"\b(?:{PHP_FUNCTIONS}|{PHP_WORDS})\s*\(\s*\)"),
                ),
                (
                    "indirect function call",
                    &format!(
                        r"\(\s*['\x22]?{PHP_FUNCTIONS}['\x22]?\s*\)\s*\(|['\x22]{PHP_FUNCTIONS}['\x22]\s*\(|\[\s*{PHP_FUNCTIONS}\s*\]\s*\[\s*0\s*\]"
                    ),
                ),
                (
                    "variable function call",
                    r"\$+(?:[a-z_\x7f-\xff][a-z0-9_\x7f-\xff]*|\s*\{[^}]{1,40}\})(?:\s|\[[^\]]{0,20}\]|\{[^}]{0,20}\}|/\*.*?\*/|//[^\n]*\n|#[^\n]*\n)*\(|\(\s*\$[a-z_][a-z0-9_]*\s*\)\s*\(|\(\s*['\x22][a-z_]+\s*['\x22]\s*\)\s*\(",
                ),
                (
                    "string-built function name",
                    r"['\x22][a-z_]+['\x22]\s*\.\s*['\x22][a-z_]+['\x22]\s*;",
                ),
                (
                    // A file name with a PHP extension, as an upload names
                    // it (multipart `filename=`, `X-Filename` headers),
                    // perhaps in a relative folder; never a request path
                    // (those start with `/`: a PHP site's every page).
                    "php script name",
                    r"^(?:[^\s/][^\s]{0,200}[/\\])?[^/\\\s]{1,200}\.(?:php[0-9]*|phtml|phar|pht|phps)\.*$",
                ),
                (
                    // `${'a'.'b'}`, `$ {$a}`, `$  { CONSTANT }`: a variable
                    // named by an expression (a template's `${a}` is not).
                    "variable variable",
                    r"\$\s*\{\s*(?:['\x22]|\$[a-z_])|\$\s+\{\s*[a-z_]",
                ),
                (
                    // `(sy.(st).em)('uname')`, `(['system'])[0]('id')`: an
                    // expression that builds a function's name, called.
                    "called expression",
                    r"(?:['\x22]\s*\.|\.\s*\(|\[\s*['\x22]|\)\s*\.)[^()]{0,80}\)\s*(?:/\*.*?\*/\s*)*(?:\[\s*[0-9]+\s*\]\s*)*\(\s*['\x22@]|\(\s*(?:/\*.*?\*/\s*)*[a-z_][a-z0-9_]*\s*(?:/\*.*?\*/\s*)*\)\s*(?:/\*.*?\*/\s*)+\(|\(\s*(?:/\*.*?\*/\s*)+[a-z_][a-z0-9_]*\s*\)\s*\(",
                ),
                (
                    // A PHP session file's name (`sess_` and the id) as an
                    // upload's name: a session overwritten.
                    "php session file name",
                    r"(?:^|[/\\])sess_[a-z0-9,-]{20,}$",
                ),
                (
                    "superglobal",
                    r"\$_(?:get|post|request|cookie|server|files|env|session)\b",
                ),
                (
                    "stream wrapper",
                    r"\b(?:php|phar|zip|expect|glob|compress\.zlib|compress\.bzip2|ogg|rar|ssh2\.[a-z]+)://",
                ),
                (
                    "php.ini directive",
                    // Snake-case and namespaced directive names are PHP's
                    // own (`memory_limit`, `mbstring.regex_stack_limit`);
                    // plain words (`engine`, `precision`) are left alone.
                    r"\b(?:allow_url_include|allow_url_fopen|auto_prepend_file|auto_append_file|disable_functions|disable_classes|open_basedir|safe_mode|extension_dir|include_path|error_log|memory_limit|max_execution_time|max_input_time|upload_max_filesize|post_max_size|unserialize_max_depth|display_errors|display_startup_errors|log_errors|register_globals|magic_quotes_gpc|file_uploads|enable_dl|short_open_tag|expose_php|upload_tmp_dir|sendmail_path|(?:opcache|session|mbstring|pcre|zend|xdebug|assert|phar|mail|user_ini|realpath_cache|mysqli|pdo_mysql|sqlite3)\.[a-z_]+)\s*=|\bextension\s*=\s*[^\s=]+\.(?:so|dll)\b",
                ),
                (
                    "serialized object",
                    r#"\b[oc]:\d+:"[a-z0-9_\\]+":\d+:\{|\ba:\d+:\{[sid]:\d"#,
                ),
            ],
        ),
        family(
            Kind::InjectionJava,
            ANY,
            &[
                (
                    "java rce class",
                    r"\bjava\.lang\.(?:runtime|processbuilder|process|class|classloader|reflect|system|thread|invoke)\b|\bjavax\.(?:script|naming|management)\b|\bcom\.sun\.(?:org\.apache|rowset|jndi|script|management)\b|\bsun\.(?:misc|reflect|rmi)\.",
                ),
                (
                    // A fully qualified class of the I/O, process, network,
                    // RMI, bean or CORBA packages: what gadget chains and
                    // expression payloads name (`java.util` is everyday).
                    "java system class",
                    r"\bjava\.(?:io|lang|net|nio|rmi|beans|security)\.[a-z][a-z0-9_$]*\b|\bjavax\.[a-z]+\.[a-z]|\borg\.omg\.[a-z]|\bcom\.sun\.[a-z]+\.[a-z]",
                ),
                (
                    "library gadget package",
                    r"\borg\.apache\.commons\.(?:collections|beanutils)|\borg\.codehaus\.groovy\.runtime|\bcom\.opensymphony\.xwork2|\bognl\.ognl|\bbsh\.interpreter|\borg\.mozilla\.javascript|\bcom\.mchange\.v2\.c3p0|\borg\.springframework\.(?:beans\.factory|context\.support)|\bjavassist\.",
                ),
                (
                    "deserialization gadget",
                    r"(?:invoker|instantiate|chained|constant|map|clone|factory|closure|predicate|switch)transformer|instantiatefactory|prototype(?:serialization|clone)factory|\b(?:for|while)closure\b|\blazymap\b|\btransformedmap\b|templatesimpl|annotationinvocationhandler|badattributevalueexpexception|jdbcrowsetimpl|\bbeancomparator\b|\bprocessbuilder\b|\bgetruntime\s*\(",
                ),
                (
                    "ognl or el expression",
                    r"#_memberaccess|@java\.lang\.|#context\s*\[|\bnew\s+java\.|\.getruntime\s*\(\s*\)\s*\.exec|\.getclass\s*\(\s*\)\s*\.forname",
                ),
                (
                    "spring class loader",
                    r"\bclass\.(?:module\.)?classloader\b",
                ),
                (
                    "serialized java object",
                    r"\baced0005|\bro0ab|\bh4siaaaaaaaa",
                ),
            ],
        ),
        family(
            Kind::InjectionCode,
            ANY,
            &[
                (
                    "node child process",
                    r"\brequire\s*\(\s*['\x22`]child_process|\bchild_process\b\s*['\x22`)]?\s*\)?\s*\.\s*(?:exec|spawn|fork)|process\.mainmodule|\bglobal\.process\b|process\.binding\s*\(|\b(?:exec|spawn)sync\s*\(|\bprocess\s*\.\s*spawn\s*\(",
                ),
                (
                    "node runtime object",
                    r"_\$\$nd_func\$\$_|\bmodule\.exports\s*=|\bprocess\s*(?:\.\s*|\[\s*['\x22`]?)(?:env|mainmodule|binding|dlopen|kill|exit)\b|\brequire\s*\.\s*main\b|\.constructor\s*\.\s*_load\b|\bconsole\s*(?:\.\s*|\[\s*['\x22`])(?:log|info|warn|error|dir|debug|trace)\b\s*['\x22`]?\s*\]?\s*(?:\(|\.\s*(?:call|apply|bind)\s*\()|\bthis\s*\.\s*constructor\s*\.\s*constructor\b|\b(?:process|require|global|globalthis)\s*\[\s*[a-z_$]",
                ),
                (
                    // A loop that never ends: a denial of service in eval'd code.
                    "endless loop",
                    r"\bwhile\s*\(+\s*(?:[!+-]\s*)*(?:true|[0-9]+|infinity|this|false|nan|null|undefined|''|\x22\x22|``|\[\]|\{\}|new\s+[a-z]+|string|number|object|array|date|math|json|boolean|symbol)\s*\)+\s*(?:;|\{|$)|\bfor\s*\(\s*;\s*;\s*\)",
                ),
                ("perl code block", r"@\{\s*\["),
                (
                    "python import",
                    r"__import__\s*\(|\bos\.(?:system|popen|exec[lv]p?e?)\s*\(|\bsubprocess\.(?:call|popen|run|check_output)\s*\(",
                ),
                (
                    "ruby execution",
                    r"%x\s*[({\[]|\bkernel\.(?:exec|system|spawn)\b|\bio\.popen\s*\(",
                ),
            ],
        ),
        family(
            Kind::InjectionPrototypePollution,
            VALUES,
            &[(
                "prototype key",
                r"__proto__|\bconstructor\s*\]?\s*(?:\.|\[\s*['\x22]?)\s*prototype\b",
            )],
        ),
        family(
            Kind::InjectionOrm,
            VALUES,
            &[(
                // Django-style filter expressions taken from parameter
                // names or JSON keys (`user__password__startswith`): a
                // relation walked or a lookup operator chosen by the client
                // leaks fields one character at a time.
                "orm lookup expression",
                r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*(?:__[a-z][a-z0-9]*(?:_[a-z0-9]+)*)*__(?:i?startswith|i?endswith|i?contains|i?exact|i?regex|isnull|gte?|lte?|in|range|has_keys?|has_any_keys|contained_by|contains_by|overlap|search|trigram_similar|unaccent|year|month|day|week_day|date)(?:\[\])?$",
            )],
        ),
        family(
            Kind::SessionFixation,
            &[Place::Query, Place::Body],
            &[
                (
                    "cookie set from a value",
                    r"\.cookie\s*=|\bset-cookie\s*:|http-equiv\s*=\s*['\x22]?set-cookie",
                ),
                (
                    "cookie attributes in a value",
                    r"\.cookie\s*;\s*expires\s*=",
                ),
            ],
        ),
    ]
});

/// Session identifier parameter names (a parameter named so, in the URL).
static SESSION_NAMES: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:phpsessid|jsessionid|aspsessionid[a-z]*|asp\.net_sessionid|sessionid|session_id|session-id|sessid|sid|cfid|cftoken|ci_session|laravel_session|connect\.sid|sails\.sid|rack\.session|_session_id|express\.sid|koa\.sid|meteor_login_token|shiny-token|phpsession|zend_session|symfony|nette-session|play_session|cakephp|fe_typo_user|wordpress_logged_in[a-z0-9_]*|_flask_session|koa[.:]sess(?:\.sig)?|zend_session_id|weblogicsession|jservsession|jwsession|_rails_session|_[a-z0-9]+_session|cfsid|(?:__host-|__secure-)?(?:next-auth|authjs)\.session-token)$",
    )
    .expect("pattern compiles")
});

/// Every family's patterns in one set (one pass over a value), each
/// pattern with its family.
struct Combined {
    set: RegexSet,
    owner: Vec<(usize, usize)>,
}

static COMBINED: LazyLock<Combined> = LazyLock::new(|| {
    let mut patterns = Vec::new();
    let mut owner = Vec::new();
    for (fi, f) in FAMILIES.iter().enumerate() {
        for (pi, p) in f.set.patterns().iter().enumerate() {
            patterns.push(p.clone());
            owner.push((fi, pi));
        }
    }
    Combined {
        set: RegexSet::new(patterns).expect("patterns compile"),
        owner,
    }
});

/// Compiles every pattern now, so the first request does not pay for it.
pub fn warm() {
    LazyLock::force(&INCLUDE_NAMES);
    LazyLock::force(&COMBINED);
    LazyLock::force(&SESSION_NAMES);
    let _ = jndi("${x}");
    let _ = leftover("/a.b");
}

/// True when `lower` is the name of a session identifier parameter.
pub fn session_parameter(lower: &str) -> bool {
    lower.len() <= 32 && SESSION_NAMES.is_match(lower)
}

/// A parameter that names something to load from the file system
/// (`_CONF[path]`, `mosConfig_absolute_path`, `include`, `template`):
/// its last word says so.
static INCLUDE_NAMES: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?:^|[_\[\].-])(?:path|dir|directory|folder|root|include|inc|require|lib|libdir|basedir|module|tpl|template|theme|skin|lang|language|conf|config|cfg)\]?$",
    )
    .expect("pattern compiles")
});

/// Remote file inclusion by name: a remote URL given to a parameter that
/// names a local path or file to include.
pub fn remote_include(name_lower: &str, value: &str) -> bool {
    let v = value.trim().to_ascii_lowercase();
    name_lower.len() <= 64
        && ["http://", "https://", "ftp://", "ftps://", "//"]
            .iter()
            .any(|p| v.starts_with(p))
        && INCLUDE_NAMES.is_match(name_lower)
}

/// Why a `Content-Type` would send the body to the wrong parser, if it
/// would: a boundary on a type that is not multipart, a parameter whose
/// value is itself a media type, or more than one type. Filters that pick
/// their body parser by a substring of this header read such a body one
/// way and the application another.
pub fn content_type_confusion(ct: &str) -> Option<&'static str> {
    let lower = ct.to_ascii_lowercase();
    let mut parts = lower.split(';');
    let media = parts.next().unwrap_or("").trim();
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    let Some((top, sub)) = media.split_once('/') else {
        return (!media.is_empty()).then_some("not a media type");
    };
    if !token(top) || !token(sub) {
        return Some(if media.contains(',') {
            "several media types"
        } else {
            "not a media type"
        });
    }
    if top == "multipart" {
        return None;
    }
    for p in parts {
        let (name, value) = p.split_once('=').unwrap_or((p, ""));
        let value = value.trim().trim_matches('"');
        if name.trim() == "boundary" {
            return Some("boundary on a type that is not multipart");
        }
        if let Some((a, b)) = value.split_once('/')
            && token(a)
            && token(b.split([' ', ',']).next().unwrap_or(""))
        {
            return Some("media type in a parameter");
        }
    }
    None
}

/// A session identifier's name where a client must not set one, as the
/// finding's shape: any known name in the URL, a framework's session
/// cookie name as a body field (the generic `session_id` and `sid` are
/// ordinary fields of many APIs there).
pub fn session_name(place: Place, lower: &str) -> Option<&'static str> {
    match place {
        Place::Query => session_parameter(lower).then_some("session parameter in the url"),
        Place::Body => (!matches!(lower, "session_id" | "session-id" | "sid")
            && session_parameter(lower))
        .then_some("session cookie name in the body"),
        _ => None,
    }
}

/// Every `(kind, shape)` family the value at `place` matches.
pub fn detect(place: Place, lower: &str) -> Vec<(Kind, &'static str)> {
    let mut out: Vec<(Kind, &'static str)> = Vec::new();
    // URLs are judged on the value itself (hosts are folded there); the
    // pattern sets on its ASCII view.
    let url_value = lower;
    let ascii = crate::detect::decode::ascii_view(lower);
    let lower: &str = &ascii;
    // Most values match nothing: a plain match is cheaper than the set.
    let any = COMBINED.set.is_match(lower);
    for i in any.then(|| COMBINED.set.matches(lower)).iter().flatten() {
        let (fi, pi) = COMBINED.owner[i];
        let f = &FAMILIES[fi];
        if f.places.contains(&place) && !out.iter().any(|(k, _)| *k == f.kind) {
            out.push((f.kind, f.names[pi]));
        }
    }
    if lower.contains("${") && jndi(lower) {
        out.push((Kind::InjectionJndi, "jndi lookup"));
    }
    if matches!(place, Place::Query | Place::Body | Place::Cookie)
        && let Some(shape) = url_threat(url_value)
    {
        out.push(shape);
    }
    if let Some(shape) = session_name(place, lower) {
        out.push((Kind::SessionFixation, shape));
    }
    if place == Place::Path
        && let Some(shape) = leftover(lower)
    {
        out.push((Kind::ProbeLeftoverFile, shape));
    }
    out
}

/// Log4j lookups resolved: `${lower:x}`, `${upper:x}` and any `${...:-x}`
/// default become `x` until nothing changes (a default may be a lone `$`
/// that joins the next brace: `${env:x:-$}{jndi:`); then a `${jndi:` is
/// the attack, however it was spelled.
fn jndi(lower: &str) -> bool {
    static LOOKUP: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"\$\{(?:lower|upper):([^${}]*)\}|\$\{[^${}]*?:-([^{}]*)\}")
            .expect("pattern compiles")
    });
    let mut s = lower.replace(char::is_whitespace, "");
    for _ in 0..16 {
        if s.contains("${jndi:") {
            return true;
        }
        let next = LOOKUP.replace_all(&s, |c: &regex::Captures<'_>| {
            c.get(1)
                .or_else(|| c.get(2))
                .map_or(String::new(), |m| m.as_str().to_string())
        });
        if next == s {
            break;
        }
        s = next.into_owned();
    }
    s.contains("${jndi:")
}

/// Backup, editor and leftover files, and hidden files or directories
/// (`/.git/`, `/.env`; `/.well-known/` is the one that is meant to be
/// served).
fn leftover(path: &str) -> Option<&'static str> {
    static BACKUP: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?:\.(?:bak|backup|bkp|old|orig|save|sav|swp|swo|tmp|un~|copy)|~|\.[a-z0-9]{1,5}\.(?:bak|old|orig|save|txt|[0-9])|\.sql(?:\.(?:gz|zip|bz2|xz|tar|7z))?|\.(?:tar\.gz|tgz)|/(?:backup|dump|db|database|site|www)\.(?:zip|tar|rar|7z))$")
            .expect("pattern compiles")
    });
    let hidden = path
        .split(['/', '\\'])
        .any(|seg| seg.len() > 1 && seg.starts_with('.') && seg != ".." && seg != ".well-known");
    if hidden {
        return Some("hidden file or directory");
    }
    let last = path.rsplit('/').next().unwrap_or("");
    // Logs left where the server serves them (`wp-content/debug.log`,
    // PHP's `error_log`): they hold paths, queries and often secrets.
    static LOG: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^(?:[a-z0-9_.-]*\.log(?:\.[0-9]{1,2})?(?:\.gz)?|error_log|access_log)$")
            .expect("pattern compiles")
    });
    if LOG.is_match(last) {
        return Some("log file");
    }
    (last.contains('.') || last.ends_with('~'))
        .then(|| BACKUP.is_match(last))
        .filter(|m| *m)
        .map(|_| "backup file")
}

#[cfg(test)]
#[path = "families_tests.rs"]
mod tests;
