//! Password redaction: the string literals that carry a password or a password hash are
//! replaced by `'***'` before a statement's text leaves the proxy.
//!
//! It works on the lexer's tokens, so quotes inside strings, escapes and comments cannot hide
//! or fake a keyword. Only statements that contain `PASSWORD` or `IDENTIFIED` somewhere (a
//! cheap byte scan) are lexed at all. What is redacted:
//!
//! - `IDENTIFIED [WITH plugin] BY 'x'`, `IDENTIFIED BY PASSWORD 'hash'`, and after
//!   `IDENTIFIED` (`VIA` or `WITH` a plugin) any literal following `USING`, `AS` or `REPLACE`;
//! - `SET PASSWORD [FOR user] = 'x'` (and its `REPLACE 'old'`);
//! - the argument of any `PASSWORD('x')` or `OLD_PASSWORD('x')` call;
//! - any literal right after a `PASSWORD` word or after `PASSWORD =` / `…_PASSWORD =`
//!   (`CREATE SERVER … OPTIONS (PASSWORD 'x')`, `CHANGE MASTER TO MASTER_PASSWORD = 'x'`).
//!
//! User names (`'app'@'%'`) and every other literal stay.
//!
//! SQL inside a string literal is redacted too, since the server may run it:
//! `PREPARE s FROM 'ALTER USER u IDENTIFIED BY ''x'''`, `EXECUTE IMMEDIATE "SET PASSWORD =
//! PASSWORD('x')"`, or `SET @s = '…'` for a later `PREPARE s FROM @s`. A string whose content
//! mentions `PASSWORD` or `IDENTIFIED` is unescaped and lexed as SQL of its own (to
//! [`MAX_DEPTH`] levels of nesting), and the content of its password literals is replaced by
//! `***` in place, quotes kept: `'… IDENTIFIED BY ''***'''`. SQL built at run time (`CONCAT`,
//! hex literals, `CHAR()`) is beyond what a text filter can see.
//!
//! Where a string ends depends on the session's `sql_mode` (`NO_BACKSLASH_ESCAPES`,
//! `ANSI_QUOTES`), and a filter does not know it: the module API hands a filter the command
//! and a summary of its reply, not the session's variables, and even a filter that followed
//! `SET sql_mode` would not know the server's global default. So the text is read under
//! every combination of the two modes, and what any reading takes for a password is masked:
//! a backslash the server reads differently from the filter cannot hide a password.

use std::borrow::Cow;
use std::ops::Range;

use switchyard_sql::{Lexer, SqlMode, Token, TokenKind};

/// What a redacted literal is replaced with.
const MASK: &[u8] = b"'***'";

/// What the content of a password literal inside a string is replaced with (its quotes, and
/// the outer string's, stay as they were).
const BARE_MASK: &[u8] = b"***";

/// How deep strings inside strings are looked into. Past it, a string that mentions a
/// password keyword is masked whole.
const MAX_DEPTH: usize = 4;

/// The readings of a text: every combination of the modes that move where strings end.
const MODES: [SqlMode; 4] = [
    mode(false, false),
    mode(true, false),
    mode(false, true),
    mode(true, true),
];

const fn mode(no_backslash_escapes: bool, ansi_quotes: bool) -> SqlMode {
    SqlMode {
        no_backslash_escapes,
        ansi_quotes,
        oracle: false,
    }
}

/// A stretch of the text to mask.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Span {
    /// What is replaced.
    range: Range<usize>,
    /// The literal's content (between its quotes): what is masked when the literal is itself
    /// inside a string.
    content: Range<usize>,
    /// Replaced by [`BARE_MASK`] (inside a string) rather than by [`MASK`] (a whole literal).
    bare: bool,
}

/// `sql` with its password literals masked; borrowed when there is none.
pub fn redact(sql: &[u8]) -> Cow<'_, [u8]> {
    if !might_hold_password(sql) {
        return Cow::Borrowed(sql);
    }
    let mut spans = Vec::new();
    for mode in MODES {
        secret_spans(sql, mode, 0, &mut spans);
    }
    if spans.is_empty() {
        return Cow::Borrowed(sql);
    }
    let mut out = Vec::with_capacity(sql.len());
    let mut at = 0;
    for span in merge(spans) {
        out.extend_from_slice(&sql[at..span.range.start]);
        out.extend_from_slice(if span.bare { BARE_MASK } else { MASK });
        at = span.range.end;
    }
    out.extend_from_slice(&sql[at..]);
    Cow::Owned(out)
}

/// The spans of every reading in order, overlapping ones joined: a stretch that any reading
/// takes for a secret is masked. A join is a whole-literal mask if any part of it was one.
fn merge(mut spans: Vec<Span>) -> Vec<Span> {
    spans.sort_by_key(|s| (s.range.start, s.range.end));
    let mut out: Vec<Span> = Vec::with_capacity(spans.len());
    for s in spans {
        match out.last_mut() {
            Some(last) if s.range.start < last.range.end => {
                last.range.end = last.range.end.max(s.range.end);
                last.bare &= s.bare;
            }
            _ => out.push(s),
        }
    }
    out
}

/// True if `sql` contains `PASSWORD` or `IDENTIFIED` in any case: the statements worth lexing.
/// Backslashes between the letters are passed over: inside a string, `IDENT\IFIED` is
/// `IDENTIFIED` once the server has unescaped it.
fn might_hold_password(sql: &[u8]) -> bool {
    if sql.contains(&b'\\') {
        return contains_skipping_backslashes(sql, b"password")
            || contains_skipping_backslashes(sql, b"identified");
    }
    contains_ignore_case(sql, b"password") || contains_ignore_case(sql, b"identified")
}

/// Like [`contains_ignore_case`], but backslashes in `hay` between the needle's letters are
/// passed over.
fn contains_skipping_backslashes(hay: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    hay.iter().enumerate().any(|(start, &b)| {
        if b | 0x20 != first {
            return false;
        }
        let mut i = start + 1;
        for &want in rest {
            while hay.get(i) == Some(&b'\\') {
                i += 1;
            }
            match hay.get(i) {
                Some(&b) if b | 0x20 == want => i += 1,
                _ => return false,
            }
        }
        true
    })
}

/// Case-insensitive substring test; `needle` is lowercase ASCII letters.
fn contains_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    if hay.len() < needle.len() {
        return false;
    }
    let last_start = hay.len() - needle.len();
    hay[..=last_start]
        .iter()
        .enumerate()
        .filter(|&(_, &b)| b | 0x20 == first)
        .any(|(i, _)| hay[i + 1..i + needle.len()].eq_ignore_ascii_case(rest))
}

/// Adds the stretches of `sql` to mask, as lexed under `mode`, to `spans`; `depth` is how
/// many strings `sql` is inside of.
fn secret_spans(sql: &[u8], mode: SqlMode, depth: usize, spans: &mut Vec<Span>) {
    // The two tokens before the current one, and the first two of the statement.
    let mut p1: Option<Token<'_>> = None;
    let mut p2: Option<Token<'_>> = None;
    let mut index = 0usize;
    let mut first: Option<Token<'_>> = None;
    let mut identified = false;
    let mut set_password = false;
    for t in Lexer::with_mode(sql, mode) {
        if t.is_symbol(b";") {
            (p1, p2, index, first, identified, set_password) = (None, None, 0, None, false, false);
            continue;
        }
        match index {
            0 => first = Some(t),
            1 => set_password = first.is_some_and(|f| f.is_word(b"SET")) && t.is_word(b"PASSWORD"),
            _ => {}
        }
        index += 1;
        if t.is_word(b"IDENTIFIED") {
            identified = true;
        }
        if matches!(t.kind, TokenKind::String | TokenKind::HexOrBit)
            && is_secret(p1, p2, identified, set_password)
        {
            spans.push(Span {
                range: t.start..t.start + t.text.len(),
                content: content_range(&t),
                bare: false,
            });
        } else if t.kind == TokenKind::String {
            nested_spans(&t, mode, depth, spans);
        }
        p2 = p1;
        p1 = Some(t);
    }
}

/// Where the content of a literal (`t.inner()`) lies in the lexed text.
fn content_range(t: &Token<'_>) -> Range<usize> {
    let inner = t.inner();
    let at = t.start + (inner.as_ptr() as usize - t.text.as_ptr() as usize);
    at..at + inner.len()
}

/// The secrets in the SQL a string literal may hold, as stretches of the outer text.
fn nested_spans(t: &Token<'_>, mode: SqlMode, depth: usize, spans: &mut Vec<Span>) {
    let raw = t.inner();
    if raw.is_empty() || !might_hold_password(raw) {
        return;
    }
    let content = content_range(t);
    if depth >= MAX_DEPTH {
        spans.push(Span {
            range: content.clone(),
            content,
            bare: true,
        });
        return;
    }
    // `N'…'` has its quote second.
    let quote = t
        .text
        .iter()
        .copied()
        .find(|&b| b == b'\'' || b == b'"')
        .unwrap_or(b'\'');
    let (inner, origin) = unescape(raw, quote, !mode.no_backslash_escapes);
    let mut found = Vec::new();
    secret_spans(&inner, mode, depth + 1, &mut found);
    for s in found {
        let Range { start, end } = s.content;
        if start >= end {
            // An empty password: nothing to hide.
            continue;
        }
        let range = content.start + origin[start].start..content.start + origin[end - 1].end;
        spans.push(Span {
            content: range.clone(),
            range,
            bare: true,
        });
    }
}

/// The value of a string literal's content as the server reads it (a doubled `quote` is one
/// quote, and with `escapes` a backslash escapes the byte after it), with the stretch of `raw`
/// each of its bytes comes from.
fn unescape(raw: &[u8], quote: u8, escapes: bool) -> (Vec<u8>, Vec<Range<usize>>) {
    let mut out = Vec::with_capacity(raw.len());
    let mut origin = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        let next = raw.get(i + 1).copied();
        match next {
            Some(n) if b == quote && n == quote => {
                out.push(quote);
                origin.push(i..i + 2);
                i += 2;
            }
            Some(e) if b == b'\\' && escapes => {
                // The server keeps the backslash of `\%` and `\_` (they are LIKE escapes).
                if e == b'%' || e == b'_' {
                    out.push(b'\\');
                    origin.push(i..i + 2);
                }
                out.push(match e {
                    b'0' => 0,
                    b'b' => 8,
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'Z' => 26,
                    other => other,
                });
                origin.push(i..i + 2);
                i += 2;
            }
            _ => {
                out.push(b);
                origin.push(i..i + 1);
                i += 1;
            }
        }
    }
    (out, origin)
}

/// True if a literal preceded by `p1` (and `p2` before it) holds a password.
fn is_secret(
    p1: Option<Token<'_>>,
    p2: Option<Token<'_>>,
    identified: bool,
    set_password: bool,
) -> bool {
    let Some(p1) = p1 else {
        return false;
    };
    let p2_is = |w: &[u8]| p2.is_some_and(|t| t.is_word(w));
    if p1.is_word(b"PASSWORD") {
        return true;
    }
    if identified && p1.is_word(b"BY") {
        return true;
    }
    if p1.is_symbol(b"(") && (p2_is(b"PASSWORD") || p2_is(b"OLD_PASSWORD")) {
        return true;
    }
    if identified && (p1.is_word(b"USING") || p1.is_word(b"AS")) {
        return true;
    }
    if (identified || set_password) && p1.is_word(b"REPLACE") {
        return true;
    }
    if p1.is_symbol(b"=") {
        return set_password || p2.is_some_and(|t| is_password_word(&t));
    }
    false
}

/// `PASSWORD`, or a word ending in `_PASSWORD` (`MASTER_PASSWORD`, `SOURCE_PASSWORD`).
fn is_password_word(t: &Token<'_>) -> bool {
    const SUFFIX: &[u8] = b"_PASSWORD";
    t.kind == TokenKind::Word
        && (t.text.eq_ignore_ascii_case(b"PASSWORD")
            || t.text.len() > SUFFIX.len()
                && t.text[t.text.len() - SUFFIX.len()..].eq_ignore_ascii_case(SUFFIX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(sql: &str) -> String {
        String::from_utf8(redact(sql.as_bytes()).into_owned()).unwrap()
    }

    fn same(sql: &str) {
        assert!(
            matches!(redact(sql.as_bytes()), Cow::Borrowed(_)),
            "changed: {sql}"
        );
    }

    #[test]
    fn identified_by() {
        assert_eq!(
            r("CREATE USER 'app'@'%' IDENTIFIED BY 's3cret'"),
            "CREATE USER 'app'@'%' IDENTIFIED BY '***'"
        );
        assert_eq!(
            r("create user if not exists app@localhost identified by \"pw\""),
            "create user if not exists app@localhost identified by '***'"
        );
        assert_eq!(
            r("ALTER USER 'app'@'10.%' IDENTIFIED BY 'new' REPLACE 'old'"),
            "ALTER USER 'app'@'10.%' IDENTIFIED BY '***' REPLACE '***'"
        );
        assert_eq!(
            r("GRANT SELECT ON db.* TO 'u'@'h' IDENTIFIED BY 'pw' WITH GRANT OPTION"),
            "GRANT SELECT ON db.* TO 'u'@'h' IDENTIFIED BY '***' WITH GRANT OPTION"
        );
        assert_eq!(
            r("CREATE USER a IDENTIFIED BY 'x', b IDENTIFIED BY 'y'"),
            "CREATE USER a IDENTIFIED BY '***', b IDENTIFIED BY '***'"
        );
    }

    #[test]
    fn hashes_and_plugins() {
        assert_eq!(
            r("CREATE USER u IDENTIFIED BY PASSWORD '*94BDCEBE19083CE2A1F959FD02F964C7AF4CFC29'"),
            "CREATE USER u IDENTIFIED BY PASSWORD '***'"
        );
        assert_eq!(
            r("CREATE USER u IDENTIFIED VIA ed25519 USING PASSWORD('secret')"),
            "CREATE USER u IDENTIFIED VIA ed25519 USING PASSWORD('***')"
        );
        assert_eq!(
            r("ALTER USER u IDENTIFIED VIA ed25519 USING 'hash' OR unix_socket"),
            "ALTER USER u IDENTIFIED VIA ed25519 USING '***' OR unix_socket"
        );
        assert_eq!(
            r("CREATE USER u IDENTIFIED VIA mysql_native_password USING 'h1' OR ed25519 AS 'h2'"),
            "CREATE USER u IDENTIFIED VIA mysql_native_password USING '***' OR ed25519 AS '***'"
        );
        assert_eq!(
            r("CREATE USER u IDENTIFIED WITH caching_sha2_password BY 'pw'"),
            "CREATE USER u IDENTIFIED WITH caching_sha2_password BY '***'"
        );
        assert_eq!(
            r("CREATE USER u IDENTIFIED WITH 'mysql_native_password' AS '*ABC'"),
            "CREATE USER u IDENTIFIED WITH 'mysql_native_password' AS '***'"
        );
        assert_eq!(
            r("CREATE USER u IDENTIFIED BY PASSWORD X'2A4142'"),
            "CREATE USER u IDENTIFIED BY PASSWORD '***'"
        );
    }

    #[test]
    fn set_password() {
        assert_eq!(
            r("SET PASSWORD = PASSWORD('pw')"),
            "SET PASSWORD = PASSWORD('***')"
        );
        assert_eq!(
            r("SET PASSWORD FOR 'app'@'%' = PASSWORD('pw')"),
            "SET PASSWORD FOR 'app'@'%' = PASSWORD('***')"
        );
        assert_eq!(
            r("set password for `app`@`%` = 'pw'"),
            "set password for `app`@`%` = '***'"
        );
        assert_eq!(r("SET PASSWORD = 'pw'"), "SET PASSWORD = '***'");
        assert_eq!(
            r("SET PASSWORD = 'new' REPLACE 'old'"),
            "SET PASSWORD = '***' REPLACE '***'"
        );
        assert_eq!(
            r("SET PASSWORD FOR u = OLD_PASSWORD('pw')"),
            "SET PASSWORD FOR u = OLD_PASSWORD('***')"
        );
    }

    #[test]
    fn password_calls_and_options() {
        assert_eq!(
            r("SELECT PASSWORD('x'), old_password(\"y\"), 'z'"),
            "SELECT PASSWORD('***'), old_password('***'), 'z'"
        );
        assert_eq!(
            r("CHANGE MASTER TO MASTER_HOST='db1', MASTER_USER='repl', MASTER_PASSWORD='pw'"),
            "CHANGE MASTER TO MASTER_HOST='db1', MASTER_USER='repl', MASTER_PASSWORD='***'"
        );
        assert_eq!(
            r("CREATE SERVER s FOREIGN DATA WRAPPER mysql OPTIONS (USER 'u', PASSWORD 'pw')"),
            "CREATE SERVER s FOREIGN DATA WRAPPER mysql OPTIONS (USER 'u', PASSWORD '***')"
        );
    }

    #[test]
    fn escapes_quotes_and_comments() {
        assert_eq!(
            r(r"CREATE USER u IDENTIFIED BY 'it\'s ''quoted'' \\'"),
            "CREATE USER u IDENTIFIED BY '***'"
        );
        assert_eq!(
            r("CREATE USER u IDENTIFIED /* by what? */ BY -- here\n 'pw' # done"),
            "CREATE USER u IDENTIFIED /* by what? */ BY -- here\n '***' # done"
        );
        assert_eq!(
            r("/*!80000 ALTER USER u IDENTIFIED BY 'pw' */"),
            "/*!80000 ALTER USER u IDENTIFIED BY '***' */"
        );
        // The keywords inside a string or a comment do not count.
        same("SELECT 'IDENTIFIED BY' , 'x'");
        same("SELECT 'x' /* PASSWORD */");
        same("INSERT INTO t VALUES ('set password = ', 'y')");
        same("SELECT * FROM users WHERE name = 'identified'");
    }

    #[test]
    fn multi_statements_reset_state() {
        assert_eq!(
            r("ALTER USER u IDENTIFIED BY 'a'; SELECT 'b' AS c"),
            "ALTER USER u IDENTIFIED BY '***'; SELECT 'b' AS c"
        );
        assert_eq!(
            r("SET PASSWORD = 'a'; SET @x = 'b'"),
            "SET PASSWORD = '***'; SET @x = 'b'"
        );
    }

    #[test]
    fn statements_without_secrets_are_borrowed() {
        same("SELECT * FROM t WHERE id = 1");
        same("UPDATE t SET a = 'x'");
        same("SELECT password FROM accounts");
        same("");
        same("CREATE USER u IDENTIFIED VIA unix_socket");
        same("ALTER USER u IDENTIFIED BY RANDOM PASSWORD");
    }

    #[test]
    fn odd_input_never_panics() {
        for s in [
            &b"IDENTIFIED BY '"[..],
            b"PASSWORD(",
            b"password",
            b"SET PASSWORD =",
            b"IDENTIFIED BY 'x\xff\xfe'",
            b"\xffPASSWORD('\xff')",
            b"'",
            b"SET PASSWORD FOR",
        ] {
            let out = redact(s);
            assert!(out.len() <= s.len() + MASK.len() * 2);
        }
        assert_eq!(
            &*redact(b"IDENTIFIED BY 'x\xff\xfe' OR"),
            b"IDENTIFIED BY '***' OR"
        );
        assert_eq!(
            &*redact(b"IDENTIFIED BY 'unterminated"),
            b"IDENTIFIED BY '***'"
        );
    }

    #[test]
    fn sql_inside_strings() {
        assert_eq!(
            r("PREPARE s FROM 'ALTER USER u IDENTIFIED BY ''x'''"),
            "PREPARE s FROM 'ALTER USER u IDENTIFIED BY ''***'''"
        );
        assert_eq!(
            r("EXECUTE IMMEDIATE 'SET PASSWORD = PASSWORD(''x'')'"),
            "EXECUTE IMMEDIATE 'SET PASSWORD = PASSWORD(''***'')'"
        );
        assert_eq!(
            r(r#"PREPARE s FROM "CREATE USER u IDENTIFIED BY 'pw'""#),
            r#"PREPARE s FROM "CREATE USER u IDENTIFIED BY '***'""#
        );
        assert_eq!(
            r(r#"EXECUTE IMMEDIATE "SET PASSWORD FOR u = ""pw""""#),
            r#"EXECUTE IMMEDIATE "SET PASSWORD FOR u = ""***""""#
        );
        assert_eq!(
            r(r"PREPARE s FROM 'ALTER USER u IDENTIFIED BY \'p\\w\''"),
            r"PREPARE s FROM 'ALTER USER u IDENTIFIED BY \'***\''"
        );
        // The keyword is only whole once the server has unescaped it.
        assert_eq!(
            r(r"PREPARE s FROM 'ALTER USER u IDENT\IFIED\nBY ''pw'''"),
            r"PREPARE s FROM 'ALTER USER u IDENT\IFIED\nBY ''***'''"
        );
        // A string kept for a later `PREPARE s FROM @s`.
        assert_eq!(
            r("SET @s = 'GRANT ALL ON *.* TO u IDENTIFIED BY ''pw'''"),
            "SET @s = 'GRANT ALL ON *.* TO u IDENTIFIED BY ''***'''"
        );
        // Two levels: a PREPARE of an EXECUTE IMMEDIATE.
        assert_eq!(
            r("PREPARE s FROM 'EXECUTE IMMEDIATE ''SET PASSWORD = ''''pw'''''''"),
            "PREPARE s FROM 'EXECUTE IMMEDIATE ''SET PASSWORD = ''''***'''''''"
        );
        // The user name and the rest of the inner statement stay.
        assert_eq!(
            r("PREPARE s FROM 'CREATE USER ''app''@''%'' IDENTIFIED BY ''pw'''"),
            "PREPARE s FROM 'CREATE USER ''app''@''%'' IDENTIFIED BY ''***'''"
        );
        same("SELECT 'my password is long', 'identified'");
        same("PREPARE s FROM 'SELECT password FROM accounts WHERE id = ?'");
        same("PREPARE s FROM 'ALTER USER u IDENTIFIED BY '''''");
    }

    #[test]
    fn every_sql_mode_reading_is_masked() {
        // With NO_BACKSLASH_ESCAPES the first string ends at the backslash, and `'x'` is the
        // argument of PASSWORD(); with escapes, it is not. The filter cannot tell which the
        // server does, so it masks what either reading calls a password.
        assert_eq!(
            r(r"SELECT 'a\' , PASSWORD('x') -- '"),
            r"SELECT 'a\' , PASSWORD('***') -- '"
        );
        // With ANSI_QUOTES, "…" is an identifier in which a backslash escapes nothing.
        assert_eq!(
            r(r#"SELECT "a\" , PASSWORD('x') -- ""#),
            r#"SELECT "a\" , PASSWORD('***') -- ""#
        );
        // With escapes, `\'` does not end the string; without, it does: the longer reading is
        // masked, so the shorter one is too.
        assert_eq!(
            r(r"ALTER USER u IDENTIFIED BY 'p\' -- '"),
            "ALTER USER u IDENTIFIED BY '***'"
        );
    }

    #[test]
    fn deep_nesting_is_masked_whole() {
        // Strings in strings past MAX_DEPTH, each doubling the quotes of the one inside it.
        let mut sql = String::from("SET PASSWORD = 'pw'");
        for _ in 0..=MAX_DEPTH {
            sql = format!("EXECUTE IMMEDIATE '{}'", sql.replace('\'', "''"));
        }
        let out = r(&sql);
        assert!(!out.contains("pw"), "{out}");
        assert!(out.starts_with("EXECUTE IMMEDIATE '"), "{out}");
    }

    #[test]
    fn unescape_maps_every_byte_back() {
        let (value, origin) = unescape(br"a''b\nc\%\'", b'\'', true);
        assert_eq!(value, b"a'b\nc\\%'");
        assert_eq!(origin, [0..1, 1..3, 3..4, 4..6, 6..7, 7..9, 7..9, 9..11]);
        let (value, _) = unescape(br"a\'b", b'\'', false);
        assert_eq!(value, br"a\'b");
    }

    #[test]
    fn substring_scan() {
        assert!(contains_ignore_case(b"xxPaSsWoRd", b"password"));
        assert!(contains_ignore_case(b"password", b"password"));
        assert!(!contains_ignore_case(b"passwor", b"password"));
        assert!(!contains_ignore_case(b"", b"password"));
        assert!(contains_ignore_case(b"abc", b""));
        assert!(contains_skipping_backslashes(
            br"x \P\A\SSWORD",
            b"password"
        ));
        assert!(!contains_skipping_backslashes(br"\password", b"passwords"));
        assert!(!contains_skipping_backslashes(b"", b"password"));
        assert!(might_hold_password(br"'IDENT\IFIED'"));
        assert!(!might_hold_password(br"'IDENT\\X'"));
    }
}
