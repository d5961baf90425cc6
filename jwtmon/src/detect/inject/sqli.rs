//! SQL injection by tokenizing, not by regular expressions: the value is
//! read as SQL in several contexts — as it is, as if it continued a
//! single-quoted string (with MySQL's backslash escapes and without, as
//! standard SQL and SQLite read it), and as if it continued a double-quoted
//! one — and each token
//! stream is matched against the shapes an injection must take to change
//! a query (a tautology after a string break, UNION SELECT, a stacked
//! statement, a time-delay function, a comment cutting the query's
//! rest...). Plain text rarely tokenizes into those shapes, which keeps
//! false positives low.

use super::sql_words::{CATALOGS, DANGEROUS, FUNCTIONS, PG_TYPES, PROCEDURES, mongo_operator};

/// Token classes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum T {
    /// String literal (`'…'`, `"…"`), possibly unterminated.
    Str,
    /// Number.
    Num,
    /// Identifier or other word.
    Word,
    /// A `backquoted` identifier (MySQL syntax, not prose).
    Ident,
    /// SQL statement keyword (SELECT, FROM, DROP, …).
    Kw(Kw),
    /// UNION [ALL|DISTINCT].
    Union,
    /// AND, OR, XOR, &&, ||.
    Logic,
    /// Comparison or arithmetic operator (=, <>, LIKE, IN, IS, +, …).
    Op,
    /// Comparison operator.
    Cmp,
    /// A word followed by `(`: 2 for functions that are attacks by
    /// themselves, 1 for other SQL functions, 0 for any other name.
    Func(u8),
    /// `@var`, `@@system_var` (true for the latter).
    Var(bool),
    /// `--`, `#` or `/* */` comment.
    Comment,
    /// `#` comment (MySQL; also an inch mark, so weaker evidence).
    Hash,
    /// `/*!` executable comment.
    Exec,
    /// `(`.
    Open,
    /// `)`.
    Close,
    /// `,`.
    Comma,
    /// `;`.
    Semi,
    /// `::type`, a PostgreSQL cast to a built-in type.
    Cast,
}

/// Statement keywords that matter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kw {
    /// SELECT.
    Select,
    /// FROM.
    From,
    /// Starts a statement of its own (DROP, DELETE, INSERT, …).
    Stmt,
    /// A clause that can follow a closed string (HAVING, ORDER, GROUP,
    /// LIMIT, WHERE, INTO, PROCEDURE).
    Clause,
    /// WAITFOR (DELAY/TIME).
    Waitfor,
    /// AS (an alias).
    As,
    /// Other SQL words (BY, TABLE, VALUES, CASE, WHEN, …).
    Other,
}

fn keyword(w: &str) -> Option<T> {
    let u = w.to_ascii_uppercase();
    Some(match u.as_str() {
        "AND" | "OR" | "XOR" => T::Logic,
        "UNION" => T::Union,
        "LIKE" | "RLIKE" | "REGEXP" | "IS" | "IN" | "BETWEEN" | "SOUNDS" | "GLOB" | "ILIKE"
        | "NOTNULL" | "ISNULL" => T::Cmp,
        "DIV" | "MOD" | "NOT" | "COLLATE" | "ESCAPE" => T::Op,
        "NULL" | "TRUE" | "FALSE" => T::Num,
        "SELECT" => T::Kw(Kw::Select),
        "FROM" => T::Kw(Kw::From),
        "DROP" | "DELETE" | "INSERT" | "UPDATE" | "CREATE" | "ALTER" | "TRUNCATE" | "EXEC"
        | "EXECUTE" | "DECLARE" | "SHUTDOWN" | "REPLACE" | "GRANT" | "RENAME" | "HANDLER"
        | "LOAD" | "CALL" => T::Kw(Kw::Stmt),
        "HAVING" | "ORDER" | "GROUP" | "LIMIT" | "WHERE" | "INTO" | "PROCEDURE" | "OFFSET" => {
            T::Kw(Kw::Clause)
        }
        "WAITFOR" => T::Kw(Kw::Waitfor),
        "AS" => T::Kw(Kw::As),
        "BY" | "TABLE" | "VALUES" | "CASE" | "WHEN" | "THEN" | "ELSE" | "END" | "SET" | "ALL"
        | "DISTINCT" | "ON" | "JOIN" | "OUTFILE" | "DUMPFILE" | "DELAY" | "BEGIN" | "DATABASE"
        | "SCHEMA" => T::Kw(Kw::Other),
        _ => return None,
    })
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// Where a value lands in a query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Context {
    /// Outside any string.
    Bare,
    /// Inside a string opened by `quote`; `backslash`: whether `\` escapes
    /// (MySQL) or is an ordinary character (standard SQL, SQLite).
    Inside {
        /// The opening quote.
        quote: u8,
        /// Backslash escapes.
        backslash: bool,
    },
}

/// Tokenizes `s` read in `ctx` (inside a string, the first token is the
/// rest of that string).
pub fn tokens(s: &[u8], ctx: Context, max: usize) -> Vec<T> {
    let mut out = Vec::with_capacity(16);
    let mut i = 0;
    let mut escapes = true;
    if let Context::Inside { quote, backslash } = ctx {
        escapes = backslash;
        i = string_end(s, 0, quote, escapes);
        out.push(T::Str);
    }
    while i < s.len() && out.len() < max {
        let b = s[i];
        match b {
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | 0xa0 => i += 1,
            b'\'' | b'"' => {
                i = string_end(s, i + 1, b, escapes);
                out.push(T::Str);
            }
            b'`' => {
                i = s[i + 1..]
                    .iter()
                    .position(|&c| c == b'`')
                    .map_or(s.len(), |p| i + p + 2);
                out.push(T::Ident);
            }
            b'0'..=b'9' => {
                let start = i;
                while i < s.len() && (is_word_byte(s[i]) || s[i] == b'.') {
                    i += 1;
                }
                let w = &s[start..i];
                let numeric = w.iter().all(|c| c.is_ascii_digit() || *c == b'.')
                    || (w.len() > 2
                        && (w[1] == b'x' || w[1] == b'X')
                        && w[0] == b'0'
                        && w[2..].iter().all(u8::is_ascii_hexdigit))
                    || is_float(w);
                out.push(if numeric { T::Num } else { T::Word });
            }
            b'.' if s.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                i += 1;
                while i < s.len() && s[i].is_ascii_digit() {
                    i += 1;
                }
                out.push(T::Num);
            }
            b'@' => {
                let sys = s.get(i + 1) == Some(&b'@');
                i += if sys { 2 } else { 1 };
                while i < s.len() && (is_word_byte(s[i]) || s[i] == b'.') {
                    i += 1;
                }
                out.push(T::Var(sys));
            }
            b'#' => {
                i = s.len();
                out.push(T::Hash);
            }
            // `--` comments (not `--word`, a common command-line flag).
            b'-' if s.get(i + 1) == Some(&b'-')
                && s.get(i + 2).is_none_or(|c| !c.is_ascii_alphanumeric()) =>
            {
                i = s.len();
                out.push(T::Comment);
            }
            b'/' if s.get(i + 1) == Some(&b'*') => {
                let exec = s.get(i + 2) == Some(&b'!');
                i = s[i + 2..]
                    .windows(2)
                    .position(|w| w == b"*/")
                    .map_or(s.len(), |p| i + 2 + p + 2);
                out.push(if exec { T::Exec } else { T::Comment });
            }
            b'(' | b')' | b',' | b';' => {
                i += 1;
                out.push(match b {
                    b'(' => T::Open,
                    b')' => T::Close,
                    b',' => T::Comma,
                    _ => T::Semi,
                });
            }
            b'&' | b'|' if s.get(i + 1) == Some(&b) => {
                i += 2;
                out.push(T::Logic);
            }
            b'=' | b'<' | b'>' | b'!' => {
                let start = i;
                while i < s.len() && matches!(s[i], b'=' | b'<' | b'>' | b'!') && i - start < 3 {
                    i += 1;
                }
                let op = &s[start..i];
                out.push(if op == b"<<" || op == b">>" || op == b"!" {
                    T::Op
                } else {
                    T::Cmp
                });
            }
            b':' if s.get(i + 1) == Some(&b':') && {
                let w = &s[i + 2..];
                let end = w.iter().position(|c| !is_word_byte(*c)).unwrap_or(w.len());
                let name = String::from_utf8_lossy(&w[..end]).to_ascii_lowercase();
                PG_TYPES.contains(&name.as_str())
            } =>
            {
                i += 2;
                while i < s.len() && is_word_byte(s[i]) {
                    i += 1;
                }
                out.push(T::Cast);
            }
            // PostgreSQL's and MySQL's JSON operators compare: `?|`, `?&`,
            // and `->`, `->>` or `?` before a string (`'{..}' ? 'a'`,
            // `-> '$.c'`); prose arrows (`a -> b`) stay operators.
            b'-' if s.get(i + 1) == Some(&b'>') && string_next(s, i + 2) => {
                i += if s.get(i + 2) == Some(&b'>') { 3 } else { 2 };
                out.push(T::Cmp);
            }
            b'?' if matches!(s.get(i + 1), Some(b'|' | b'&')) || string_next(s, i + 1) => {
                i += if matches!(s.get(i + 1), Some(b'|' | b'&')) {
                    2
                } else {
                    1
                };
                out.push(T::Cmp);
            }
            b'+' | b'-' | b'*' | b'/' | b'%' | b'^' | b'|' | b'&' | b'~' | b':' => {
                i += 1;
                out.push(T::Op);
            }
            _ if is_word_byte(b) => {
                let start = i;
                while i < s.len() && (is_word_byte(s[i]) || s[i] == b'.') {
                    i += 1;
                }
                let w = String::from_utf8_lossy(&s[start..i]);
                let w = w.trim_end_matches('.');
                let next = s[i..].iter().find(|c| !c.is_ascii_whitespace());
                if next == Some(&b'(') && keyword(w).is_none_or(|k| k == T::Kw(Kw::Other)) {
                    let lw = w.to_ascii_lowercase();
                    let name = lw.rsplit('.').next().unwrap_or(&lw);
                    out.push(T::Func(if DANGEROUS.contains(&name) {
                        2
                    } else {
                        u8::from(FUNCTIONS.contains(&name))
                    }));
                } else if let Some(k) = keyword(w) {
                    // UNION ALL / UNION DISTINCT are one token.
                    if k == T::Kw(Kw::Other) && out.last() == Some(&T::Union) {
                        continue;
                    }
                    out.push(k);
                } else {
                    out.push(T::Word);
                }
            }
            _ => i += 1,
        }
    }
    out
}

/// A string literal starts at or after `i` (past `>` and blanks).
fn string_next(s: &[u8], i: usize) -> bool {
    s.get(i..)
        .unwrap_or_default()
        .iter()
        .find(|c| !c.is_ascii_whitespace() && **c != b'>')
        .is_some_and(|c| matches!(c, b'\'' | b'"'))
}

fn is_float(w: &[u8]) -> bool {
    std::str::from_utf8(w).is_ok_and(|s| s.parse::<f64>().is_ok())
}

/// Index after the string opened before `i` by `q` (doubled quotes, and
/// with `escapes` backslash escapes, stay inside).
fn string_end(s: &[u8], mut i: usize, q: u8, escapes: bool) -> usize {
    while i < s.len() {
        if escapes && s[i] == b'\\' {
            i += 2;
        } else if s[i] == q {
            if s.get(i + 1) == Some(&q) {
                i += 2;
            } else {
                return i + 1;
            }
        } else {
            i += 1;
        }
    }
    s.len()
}

fn value(t: Option<&T>) -> bool {
    matches!(
        t,
        Some(T::Str | T::Num | T::Word | T::Ident | T::Var(_) | T::Func(_))
    )
}

/// The shape that makes this token stream an injection, if any.
pub fn shape(t: &[T], quoted: bool) -> Option<&'static str> {
    let at = |i: usize| t.get(i);
    for (i, tok) in t.iter().enumerate() {
        match tok {
            T::Func(2) => return Some("dangerous function call"),
            // A SQL function called at the start or after an operator.
            T::Func(1)
                if i == 0
                    || matches!(
                        at(i - 1),
                        Some(T::Op | T::Cmp | T::Logic | T::Open | T::Comma | T::Str)
                    ) =>
            {
                return Some("sql function call");
            }
            // DROP x, DECLARE @v, DROP/**/x
            T::Kw(Kw::Stmt)
                if i == 0
                    && matches!(
                        t[1..].iter().find(|x| **x != T::Comment),
                        Some(T::Word | T::Func(_) | T::Open | T::Var(_))
                    )
                    || i == 0
                        && at(1) == Some(&T::Kw(Kw::Other))
                        && matches!(at(2), Some(T::Ident | T::Word)) =>
            {
                return Some("statement");
            }
            T::Cast if i > 0 && (value(at(i - 1)) || at(i - 1) == Some(&T::Close)) => {
                return Some("postgres cast");
            }
            // ) AS alias FROM: a subquery's select list continued.
            // 1234 AS "alias" FROM: a select list's column, a quoted
            // alias, FROM (prose names things unquoted: "known as Bob from").
            T::Kw(Kw::As)
                if i > 0
                    && (at(i - 1) == Some(&T::Close)
                        && matches!(at(i + 1), Some(T::Word | T::Str))
                        || matches!(at(i - 1), Some(T::Num | T::Ident))
                            && matches!(at(i + 1), Some(T::Str | T::Ident)))
                    && at(i + 2) == Some(&T::Kw(Kw::From)) =>
            {
                return Some("alias and from");
            }
            T::Kw(Kw::Clause) if clause_continues(t, i) => return Some("clause"),
            // FROM `db`.`table` WHERE|LIMIT|ORDER ...: backquoted names are
            // MySQL's, and a clause after them is a query's tail (a
            // Markdown "from `file`" is not followed by one).
            T::Kw(Kw::From) if from_quoted_table(t, i) => return Some("from a quoted table"),
            T::Exec => return Some("executable comment"),
            T::Var(true) => return Some("system variable"),
            T::Union if matches!(at(i + 1), Some(T::Kw(Kw::Select) | T::Open)) => {
                return Some("union select");
            }
            T::Semi if matches!(at(i + 1), Some(T::Kw(Kw::Stmt | Kw::Select | Kw::Waitfor))) => {
                return Some("stacked statement");
            }
            T::Kw(Kw::Waitfor) if i + 1 < t.len() => return Some("waitfor"),
            T::Kw(Kw::Select)
                if t[i + 1..]
                    .iter()
                    .take(8)
                    .skip(1)
                    .any(|x| *x == T::Kw(Kw::From))
                    || matches!(at(i + 1), Some(T::Func(_) | T::Var(_) | T::Open)) =>
            {
                return Some("select");
            }
            // A tautology or contradiction: [v] AND|OR v <cmp> v.
            T::Logic
                if (i == 0 || value(at(i - 1)) || at(i - 1) == Some(&T::Close))
                    && value(at(i + 1))
                    && matches!(at(i + 2), Some(T::Cmp))
                    && (value(at(i + 3)) || at(i + 3).is_none_or(|x| *x == T::Open)) =>
            {
                return Some("boolean condition");
            }
            // [v] AND|OR v --  (the rest of the query cut off)
            T::Logic
                if (i > 0 && value(at(i - 1)) || i == 0 && at(i + 1) == Some(&T::Num))
                    && value(at(i + 1))
                    && matches!(at(i + 2), Some(T::Comment | T::Hash)) =>
            {
                return Some("condition and comment");
            }
            // v = v OR --
            T::Logic
                if i >= 3
                    && value(at(i - 1))
                    && at(i - 2) == Some(&T::Cmp)
                    && at(i + 1) == Some(&T::Comment) =>
            {
                return Some("condition and comment");
            }
            _ => {}
        }
    }
    // The value ends in a comparison of two literals: 1=1, 'a'='a',
    // 1 IS NOT 2, x,1=1.
    if !quoted && literal_comparison(t) {
        return Some("literal comparison");
    }
    if !quoted {
        return None;
    }
    // After the string break: what follows the synthetic string token.
    let (mut j, mut closed) = (1, false);
    while at(j) == Some(&T::Close) {
        j += 1;
        closed = true;
    }
    match at(j) {
        Some(T::Logic) if value(at(j + 1)) || at(j + 1) == Some(&T::Open) => {
            match at(j + 2) {
                // ' OR 'a'='a  /  ' AND 1=1  /  ' OR x--  /  ' OR true;
                Some(T::Cmp | T::Comment | T::Open | T::Semi) => Some("string break, condition"),
                None if at(j + 1) == Some(&T::Num) => Some("string break, condition"),
                // x' OR '1: the query's own closing quote ends the second
                // string, and the condition is a truthy literal ([`detect`]
                // checks that the string is one short word).
                None if j == 1 && at(j + 1) == Some(&T::Str) => Some(OPEN_LITERAL),
                Some(T::Op) if value(at(j + 3)) => Some("string break, condition"),
                // ' OR (x GLOB 1)--  /  ' or f (x);
                _ if t[j + 2..].iter().any(|x| matches!(x, T::Comment | T::Semi)) => {
                    Some("string break, condition")
                }
                _ => None,
            }
        }
        Some(T::Logic) if closed => Some("string break, condition"),
        Some(T::Union) if matches!(at(j + 1), Some(T::Kw(_) | T::Open)) => {
            Some("string break, union")
        }
        Some(T::Semi) if matches!(at(j + 1), Some(T::Kw(Kw::Stmt | Kw::Select | Kw::Waitfor))) => {
            Some("string break, stacked statement")
        }
        // `admin@site';`: the string closed and the statement ended, so
        // the query's rest (its password check) is a statement of its own
        // or a syntax error the attacker reads.
        // ... and `';#`, `'; --`: the rest of the line cut off too.
        Some(T::Semi)
            if j == 1 && (t.len() == 2 || t.len() == 3 && matches!(t[2], T::Comment | T::Hash)) =>
        {
            Some(STATEMENT_END)
        }
        Some(T::Comment) if j == 1 || closed => Some("string break, comment"),
        Some(T::Kw(Kw::Clause)) if clause_continues(t, j) => Some("string break, clause"),
        Some(T::Kw(Kw::Waitfor | Kw::Select)) => Some("string break, clause"),
        Some(T::Op | T::Cmp) if matches!(at(j + 1), Some(T::Func(1..) | T::Open)) => {
            Some("string break, expression")
        }
        Some(T::Cmp) if closed && value(at(j + 1)) => Some("string break, comparison"),
        // ' < email--  /  'IS NOT id--  /  '+x--: an operator on the broken
        // string, the rest of the query commented out.
        Some(T::Cmp | T::Op)
            if t[j + 1..].last() == Some(&T::Comment)
                && t[j + 1..t.len() - 1]
                    .iter()
                    .all(|x| value(Some(x)) || matches!(x, T::Cmp | T::Op))
                && t.len() > j + 2 =>
        {
            Some("string break, operator and comment")
        }
        _ => None,
    }
}

/// The tokens end in a comparison of two literals of one type: `1=1`,
/// `'a'='a'`, `1 IS NOT 2`, `'1' NOT REGEXP '2'`, after nothing, a comma or
/// AND/OR.
fn literal_comparison(t: &[T]) -> bool {
    let Some(last @ (T::Num | T::Str)) = t.last() else {
        return false;
    };
    let mut k = t.len() - 1;
    let mut cmp = false;
    while k > 0 && t.len() - k <= 2 && matches!(t[k - 1], T::Cmp | T::Op) {
        cmp |= t[k - 1] == T::Cmp;
        k -= 1;
    }
    cmp && k > 0 && t[k - 1] == *last && (k == 1 || matches!(t[k - 2], T::Comma | T::Logic))
}

/// FROM followed by backquoted names and a clause that goes on (or ends
/// the value).
fn from_quoted_table(t: &[T], i: usize) -> bool {
    let mut k = i + 1;
    while t.get(k) == Some(&T::Ident) {
        k += 1;
    }
    k > i + 1
        && t.get(k) == Some(&T::Kw(Kw::Clause))
        && (k + 1 == t.len()
            || matches!(t.get(k + 1), Some(T::Ident | T::Num | T::Kw(Kw::Other)))
            || clause_continues(t, k))
}

/// ORDER/GROUP BY n, HAVING|WHERE v <cmp>, LIMIT n, INTO OUTFILE ...
fn clause_continues(t: &[T], i: usize) -> bool {
    match (t.get(i + 1), t.get(i + 2)) {
        (Some(T::Kw(Kw::Other)), Some(T::Num | T::Word | T::Comment) | None) => true,
        (Some(T::Num), None | Some(T::Comment | T::Comma)) => true,
        (Some(x), Some(T::Cmp)) if value(Some(x)) => true,
        (Some(T::Kw(Kw::Other)), Some(T::Str)) => true,
        (Some(T::Func(1..)), Some(T::Open)) => true,
        _ => false,
    }
}

/// One case-insensitive pass over a value for every catalog and procedure
/// name (catalogs first).
fn names() -> &'static aho_corasick::AhoCorasick {
    static NAMES: std::sync::LazyLock<aho_corasick::AhoCorasick> = std::sync::LazyLock::new(|| {
        aho_corasick::AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(CATALOGS.iter().chain(PROCEDURES))
            .expect("static patterns build")
    });
    &NAMES
}

/// Whether a statement keyword in `value` is followed by its grammar:
/// the object of DROP/CREATE/ALTER/TRUNCATE, UPDATE's SET, DELETE's FROM,
/// INSERT's INTO or VALUES, DECLARE's variable, EXEC's procedure.
fn statement_grammar(value: &str) -> bool {
    static GRAMMAR: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(
            r"(?i)\b(?:(?:drop|truncate)(?:\s|/\*.*?\*/)+(?:temporary\s+)?(?:table|database|schema|user|view|procedure|proc|function|index|trigger|login|role|sequence|event)(?:\s|/\*.*?\*/)+(?:if\s+exists\s+)?\S+\s*(?:$|;|\b(?:cascade|restrict|purge)\b)|alter(?:\s|/\*.*?\*/)+(?:table|database|schema|user|view|procedure|function|index|trigger|login|role|sequence|event)(?:\s|/\*.*?\*/)+\S+\s+(?:add|drop|modify|alter|rename|change|set|owner|enable|disable)\b|rename\s+table\s+\S+\s+to\b|create(?:\s|/\*.*?\*/)+(?:(?:temporary|or\s+replace)\s+)*(?:table|database|schema|user|view|procedure|proc|function|index|trigger|login|role|sequence|event)(?:\s|/\*.*?\*/)+(?:if\s+not\s+exists\s+)?\S+\s*(?:\(|as\b|like\b)|update(?:\s|/\*.*?\*/)+\S+(?:\s|/\*.*?\*/)+set\b|delete(?:\s|/\*.*?\*/)+(?:\S+\s+)?from\b|(?:insert|replace)(?:\s|/\*.*?\*/)+(?:into\b|\S+\s*(?:\(|values\b))|declare\s+@|exec(?:ute)?(?:\s|/\*.*?\*/)*(?:\(|@|\w+\.|(?:master|xp_|sp_))|shutdown\b|grant\s+\w+|handler\s+\S+\s+(?:open|read)|load\s+(?:data|xml)\b|call\s+\w+\s*\()",
        )
        .expect("pattern compiles")
    });
    GRAMMAR.is_match(value)
}

/// `admin@site';`: the string closed and the statement ended.
const STATEMENT_END: &str = "string break, statement end";

/// Whether the quote that closes the string follows a digit: a foot or
/// inch mark (`HAT 18';`), not a string's end.
fn measure_mark(value: &str, quote: u8) -> bool {
    let b = value.as_bytes();
    b.iter()
        .position(|c| *c == quote)
        .is_some_and(|at| at > 0 && b[at - 1].is_ascii_digit())
}

/// `x' OR '1`: a condition on a string the query's own quote will close.
const OPEN_LITERAL: &str = "string break, condition on a literal";

/// Whether the value ends in an open string of one short word (`'1`,
/// `'oof`), the literal [`OPEN_LITERAL`] needs; prose ends otherwise
/// (`"disney:`, `'and'`).
fn ends_in_short_literal(value: &str, quote: u8) -> bool {
    let Some(at) = value.bytes().rposition(|b| b == quote) else {
        return false;
    };
    let tail = &value.as_bytes()[at + 1..];
    (1..=8).contains(&tail.len()) && tail.iter().all(u8::is_ascii_alphanumeric)
}

/// Whether a plain value (no syntax) is a system catalog's name, the
/// whole of it: a length test first, so ordinary words cost nothing.
pub fn catalog_word(value: &str) -> bool {
    CATALOGS
        .iter()
        .any(|c| c.len() == value.len() && c.eq_ignore_ascii_case(value))
}

/// Whether `value` is a SQL injection; the shape found.
pub fn detect(value: &str) -> Option<&'static str> {
    let s = value.as_bytes();
    if s.len() < 2 {
        return None;
    }
    // Short names (`msdb`, `tempdb`) count only as words of their own;
    // long ones anywhere, glued included (`frominformation_schema`).
    let word = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_');
    if let Some(m) = names().find_iter(value).find(|m| {
        m.len() > 6 || !(word(s.get(m.end())) || m.start() > 0 && word(s.get(m.start() - 1)))
    }) {
        return Some(if m.pattern().as_usize() < CATALOGS.len() {
            "catalog name"
        } else {
            "attack procedure"
        });
    }
    // Operators all start with `$`: most values never pay for the lowercase copy.
    if value.contains('$') && mongo_operator(&value.to_ascii_lowercase()) {
        return Some("mongodb operator");
    }
    // A leading statement keyword in words alone (no quote, operator,
    // parenthesis or comment; backquoted names are words here) is one only
    // with its grammar after it (`UPDATE t SET`, `DROP TABLE`), not prose
    // ("update my address", "load the settings from `x`").
    let words_only = !value.contains(['\'', '"', ';', '(', ')', '@', '#', '=', '/', '*', '-']);
    let real = |x: &'static str| x != "statement" || !words_only || statement_grammar(value);
    if let Some(x) = shape(&tokens(s, Context::Bare, 24), false).filter(|x| real(x)) {
        return Some(x);
    }
    let has_backslash = s.contains(&b'\\');
    for (quote, backslash) in [(b'\'', true), (b'\'', false), (b'"', true)] {
        // Without a backslash in the value both readings are the same.
        if !s.contains(&quote) || (!backslash && !has_backslash) {
            continue;
        }
        if let Some(x) = shape(&tokens(s, Context::Inside { quote, backslash }, 24), true)
            .filter(|x| real(x))
            .filter(|x| *x != OPEN_LITERAL || ends_in_short_literal(value, quote))
            .filter(|x| *x != STATEMENT_END || !measure_mark(value, quote))
        {
            return Some(x);
        }
    }
    None
}

#[cfg(test)]
#[path = "sqli_tests.rs"]
mod tests;
