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

use std::borrow::Cow;
use std::ops::Range;

use switchyard_sql::{Lexer, Token, TokenKind};

/// What a redacted literal is replaced with.
const MASK: &[u8] = b"'***'";

/// `sql` with its password literals masked; borrowed when there is none.
pub fn redact(sql: &[u8]) -> Cow<'_, [u8]> {
    if !might_hold_password(sql) {
        return Cow::Borrowed(sql);
    }
    let spans = secret_spans(sql);
    if spans.is_empty() {
        return Cow::Borrowed(sql);
    }
    let mut out = Vec::with_capacity(sql.len());
    let mut at = 0;
    for span in spans {
        out.extend_from_slice(&sql[at..span.start]);
        out.extend_from_slice(MASK);
        at = span.end;
    }
    out.extend_from_slice(&sql[at..]);
    Cow::Owned(out)
}

/// True if `sql` contains `PASSWORD` or `IDENTIFIED` in any case: the statements worth lexing.
fn might_hold_password(sql: &[u8]) -> bool {
    contains_ignore_case(sql, b"password") || contains_ignore_case(sql, b"identified")
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

/// The byte ranges of the literals to mask, in order.
fn secret_spans(sql: &[u8]) -> Vec<Range<usize>> {
    let mut spans = Vec::new();
    // The two tokens before the current one, and the first two of the statement.
    let mut p1: Option<Token<'_>> = None;
    let mut p2: Option<Token<'_>> = None;
    let mut index = 0usize;
    let mut first: Option<Token<'_>> = None;
    let mut identified = false;
    let mut set_password = false;
    for t in Lexer::new(sql) {
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
            spans.push(t.start..t.start + t.text.len());
        }
        p2 = p1;
        p1 = Some(t);
    }
    spans
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
    fn substring_scan() {
        assert!(contains_ignore_case(b"xxPaSsWoRd", b"password"));
        assert!(contains_ignore_case(b"password", b"password"));
        assert!(!contains_ignore_case(b"passwor", b"password"));
        assert!(!contains_ignore_case(b"", b"password"));
        assert!(contains_ignore_case(b"abc", b""));
    }
}
