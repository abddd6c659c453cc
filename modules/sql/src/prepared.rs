//! Text-protocol prepared statements: `PREPARE name FROM '...'`, `EXECUTE name`,
//! `DEALLOCATE PREPARE name`.
//!
//! [`classify`](crate::classify()) marks `EXECUTE` as a write because the statement it runs is
//! not in its text. A router that wants to do better remembers what each name was prepared
//! from: [`parse_prepare`] gives the name and the unescaped source (classify that), and
//! [`statement_name`] gives the name an `EXECUTE` or `DEALLOCATE` refers to. Statement names are
//! case-insensitive in MySQL and MariaDB: compare them with `eq_ignore_ascii_case`.

use crate::lexer::{Lexer, Token, TokenKind};

/// A parsed `PREPARE name FROM source`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextPrepare {
    /// The statement name, unquoted.
    pub name: Vec<u8>,
    /// The statement text, unescaped; `None` when it comes from a user variable
    /// (`PREPARE s FROM @sql`), which the proxy cannot see.
    pub source: Option<Vec<u8>>,
}

/// Parses `PREPARE name FROM 'text'` (or `FROM @var`); `None` for anything else.
pub fn parse_prepare(sql: &[u8]) -> Option<TextPrepare> {
    let mut lex = Lexer::new(sql);
    if !lex.next()?.is_word(b"PREPARE") {
        return None;
    }
    let name = ident(lex.next()?)?;
    if !lex.next()?.is_word(b"FROM") {
        return None;
    }
    let src = lex.next()?;
    let source = match src.kind {
        TokenKind::String => Some(unescape(src.inner(), src.text[0])),
        TokenKind::UserVar => None,
        _ => return None,
    };
    Some(TextPrepare { name, source })
}

/// The statement name of `EXECUTE name [USING ...]`, `DEALLOCATE PREPARE name` or
/// `DROP PREPARE name`; `None` for anything else (also `EXECUTE IMMEDIATE`).
pub fn statement_name(sql: &[u8]) -> Option<Vec<u8>> {
    let mut lex = Lexer::new(sql);
    let first = lex.next()?;
    if first.is_word(b"DEALLOCATE") || first.is_word(b"DROP") {
        if !lex.next()?.is_word(b"PREPARE") {
            return None;
        }
    } else if !first.is_word(b"EXECUTE") || lex.peek()?.is_word(b"IMMEDIATE") {
        return None;
    }
    ident(lex.next()?)
}

fn ident(t: Token<'_>) -> Option<Vec<u8>> {
    match t.kind {
        TokenKind::Word => Some(t.text.to_vec()),
        TokenKind::QuotedIdent => Some(t.inner().to_vec()),
        _ => None,
    }
}

/// Undoes MySQL string escapes (`\n`, `\t`, `\0`, `\'`, `\\`, ...; `\%` and `\_` keep their
/// backslash) and doubled quotes.
fn unescape(s: &[u8], quote: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if c == b'\\' && i + 1 < s.len() {
            let e = s[i + 1];
            match e {
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'r' => out.push(b'\r'),
                b'0' => out.push(0),
                b'b' => out.push(8),
                b'Z' => out.push(26),
                b'%' | b'_' => out.extend_from_slice(&[b'\\', e]),
                _ => out.push(e),
            }
            i += 2;
        } else if c == quote && s.get(i + 1) == Some(&quote) {
            out.push(quote);
            i += 2;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{classify, Flags};

    #[test]
    fn prepare_from_literal() {
        let p = parse_prepare(b"PREPARE s1 FROM 'SELECT * FROM t WHERE a = ''x'' AND b = \\'y\\''")
            .unwrap();
        assert_eq!(p.name, b"s1");
        let src = p.source.unwrap();
        assert_eq!(src, b"SELECT * FROM t WHERE a = 'x' AND b = 'y'");
        assert_eq!(classify(&src).flags, Flags::READ);
        let p = parse_prepare(b"prepare `my s` from \"UPDATE t SET a=\\\"1\\\"\\n\"").unwrap();
        assert_eq!(p.name, b"my s");
        assert_eq!(p.source.unwrap(), b"UPDATE t SET a=\"1\"\n");
        let p = parse_prepare(b"/* c */ PREPARE s FROM @sql").unwrap();
        assert_eq!(p.source, None);
        assert_eq!(parse_prepare(b"PREPARE s"), None);
        assert_eq!(parse_prepare(b"SELECT 1"), None);
        assert_eq!(parse_prepare(b"PREPARE s FROM 1"), None);
        assert_eq!(unescape(b"a\\%b\\_c\\0", b'\''), b"a\\%b\\_c\0");
    }

    #[test]
    fn names_of_execute_and_deallocate() {
        assert_eq!(statement_name(b"EXECUTE s1 USING @a"), Some(b"s1".to_vec()));
        assert_eq!(statement_name(b"execute `q`"), Some(b"q".to_vec()));
        assert_eq!(
            statement_name(b"DEALLOCATE PREPARE s1"),
            Some(b"s1".to_vec())
        );
        assert_eq!(statement_name(b"DROP PREPARE s1"), Some(b"s1".to_vec()));
        assert_eq!(statement_name(b"DROP TABLE s1"), None);
        assert_eq!(statement_name(b"EXECUTE IMMEDIATE 'SELECT 1'"), None);
        assert_eq!(statement_name(b"EXECUTE"), None);
    }
}
