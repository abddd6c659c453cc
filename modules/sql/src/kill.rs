//! `KILL [HARD|SOFT] [CONNECTION|QUERY] <id>`: recognised so that the connection ids clients
//! see (the proxy's own) can be translated to the backends' thread ids.

use crate::{Lexer, TokenKind};

/// What a KILL statement asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kill {
    pub query_only: bool,
    pub id: u64,
}

impl Kill {
    /// The statement to run on the backend for thread `thread_id`.
    pub fn backend_sql(&self, thread_id: u32) -> String {
        let what = if self.query_only {
            "QUERY"
        } else {
            "CONNECTION"
        };
        format!("KILL {what} {thread_id}")
    }
}

/// How the proxy treats a statement that may be a KILL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// Not a KILL of a connection id: passed on as it is (including `KILL QUERY ID <query id>`
    /// and `KILL USER`).
    Other,
    Kill(Kill),
    /// A KILL whose id is an expression the proxy does not evaluate; refused rather than sent
    /// on with an id the server would read as one of its own thread ids.
    Unsupported,
}

/// Parses a KILL statement. The id may be a number, quoted or in parentheses. A KILL in a later
/// statement of a multi-statement query is refused: the proxy would have to split the query to
/// translate it, and sent on as it is, its id would name some other backend thread.
pub fn parse(sql: &[u8]) -> Parsed {
    match parse_first(sql) {
        Parsed::Other if kill_after_first(sql) => Parsed::Unsupported,
        parsed => parsed,
    }
}

/// True if a statement after the first one starts with KILL (other than `KILL USER` and
/// `KILL QUERY ID`, which name no connection id). Cheap for the queries without `;` or the word.
fn kill_after_first(sql: &[u8]) -> bool {
    let has = |needle: &[u8]| {
        sql.windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
    };
    if !sql.contains(&b';') || !has(b"kill") {
        return false;
    }
    let mut tokens = Lexer::new(sql).peekable();
    while let Some(t) = tokens.next() {
        if t.kind != TokenKind::Symbol || t.text != b";" {
            continue;
        }
        let starts_with_kill = tokens
            .peek()
            .is_some_and(|t| t.kind == TokenKind::Word && t.text.eq_ignore_ascii_case(b"KILL"));
        if starts_with_kill {
            let rest = &sql[tokens.peek().map_or(sql.len(), |t| t.start)..];
            if !names_no_connection(rest) {
                return true;
            }
        }
    }
    false
}

/// `KILL USER ...` or `KILL [HARD|SOFT] QUERY ID ...`.
fn names_no_connection(kill: &[u8]) -> bool {
    let words: Vec<&[u8]> = Words { s: kill }.take(4).collect();
    let is = |i: usize, w: &[u8]| words.get(i).is_some_and(|x| x.eq_ignore_ascii_case(w));
    let skip = usize::from(is(1, b"HARD") || is(1, b"SOFT"));
    is(1 + skip, b"USER") || is(1 + skip, b"QUERY") && is(2 + skip, b"ID")
}

fn parse_first(sql: &[u8]) -> Parsed {
    let mut words = Words { s: sql };
    let is_kill = words
        .next()
        .is_some_and(|w| w.eq_ignore_ascii_case(b"KILL"));
    if !is_kill {
        return Parsed::Other;
    }
    let Some(mut word) = words.next() else {
        return Parsed::Other;
    };
    if word.eq_ignore_ascii_case(b"HARD") || word.eq_ignore_ascii_case(b"SOFT") {
        let Some(w) = words.next() else {
            return Parsed::Unsupported;
        };
        word = w;
    }
    let mut query_only = false;
    if word.eq_ignore_ascii_case(b"USER") {
        return Parsed::Other;
    } else if word.eq_ignore_ascii_case(b"CONNECTION") || word.eq_ignore_ascii_case(b"QUERY") {
        query_only = word.eq_ignore_ascii_case(b"QUERY");
        let Some(w) = words.next() else {
            return Parsed::Unsupported;
        };
        if query_only && w.eq_ignore_ascii_case(b"ID") {
            return Parsed::Other;
        }
        word = w;
    }
    let Some(id) = literal_id(word) else {
        return Parsed::Unsupported;
    };
    match (words.next(), words.next()) {
        (None, _) | (Some(b";"), None) => Parsed::Kill(Kill { query_only, id }),
        _ => Parsed::Unsupported,
    }
}

/// `12`, `'12'`, `"12"` or `(12)`.
fn literal_id(word: &[u8]) -> Option<u64> {
    let digits = match word {
        [b'\'', inner @ .., b'\''] | [b'"', inner @ .., b'"'] | [b'(', inner @ .., b')'] => inner,
        _ => word,
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Words of a statement, skipping white space and comments; `;` is a word of its own.
struct Words<'a> {
    s: &'a [u8],
}

impl<'a> Iterator for Words<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            let s = self.s;
            if let Some(rest) = s.strip_prefix(b"/*") {
                // Executable comments (`/*! ... */`) would change the statement: give up on
                // translating rather than guess.
                if rest.first() == Some(&b'!') || rest.first() == Some(&b'M') {
                    self.s = b"\x00";
                    return Some(b"\x00");
                }
                let end = rest.windows(2).position(|w| w == b"*/")?;
                self.s = &rest[end + 2..];
            } else if s.starts_with(b"#") || s.starts_with(b"-- ") {
                let end = s.iter().position(|&c| c == b'\n').unwrap_or(s.len());
                self.s = &s[end..];
            } else if s.first().is_some_and(|c| c.is_ascii_whitespace()) {
                self.s = &s[1..];
            } else {
                break;
            }
        }
        let s = self.s;
        if s.is_empty() {
            return None;
        }
        if s[0] == b';' {
            self.s = &s[1..];
            return Some(&s[..1]);
        }
        let end = s
            .iter()
            .position(|c| c.is_ascii_whitespace() || *c == b';' || *c == b'/' || *c == b'#')
            .unwrap_or(s.len());
        let end = end.max(1);
        self.s = &s[end..];
        Some(&s[..end])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_statements_of_a_multi_statement_query() {
        assert_eq!(parse(b"SELECT 1; KILL QUERY 12"), Parsed::Unsupported);
        assert_eq!(parse(b"SELECT 1;kill 12;"), Parsed::Unsupported);
        assert_eq!(
            parse(b"SELECT 1; /* x */ KILL CONNECTION (12)"),
            Parsed::Unsupported
        );
        assert_eq!(parse(b"SELECT 1; KILL USER app"), Parsed::Other);
        assert_eq!(parse(b"SELECT 1; KILL QUERY ID 7"), Parsed::Other);
        assert_eq!(parse(b"SELECT 'a; KILL 12'"), Parsed::Other);
        assert_eq!(parse(b"SELECT 1; SELECT 'kill'"), Parsed::Other);
        assert_eq!(parse(b"SELECT skill; SELECT 2"), Parsed::Other);
    }

    fn kill(query_only: bool, id: u64) -> Parsed {
        Parsed::Kill(Kill { query_only, id })
    }

    #[test]
    fn kill_forms() {
        assert_eq!(parse(b"KILL 12"), kill(false, 12));
        assert_eq!(parse(b"kill query 7;"), kill(true, 7));
        assert_eq!(parse(b"  KILL HARD CONNECTION\n 3 "), kill(false, 3));
        assert_eq!(parse(b"/* c */ KILL SOFT QUERY 9"), kill(true, 9));
        assert_eq!(parse(b"KILL QUERY 9 -- why\n"), kill(true, 9));
        assert_eq!(parse(b"KILL QUERY '9'"), kill(true, 9));
        assert_eq!(parse(b"KILL (9)"), kill(false, 9));
    }

    #[test]
    fn passed_on() {
        assert_eq!(parse(b"KILL QUERY ID 5"), Parsed::Other);
        assert_eq!(parse(b"KILL USER app"), Parsed::Other);
        assert_eq!(parse(b"KILL HARD USER app"), Parsed::Other);
        assert_eq!(parse(b"SELECT 1"), Parsed::Other);
        assert_eq!(parse(b"KILLER 1"), Parsed::Other);
        assert_eq!(parse(b"KILL"), Parsed::Other);
    }

    #[test]
    fn refused() {
        assert_eq!(parse(b"KILL 5; DROP TABLE t"), Parsed::Unsupported);
        assert_eq!(parse(b"KILL QUERY 5 + 0"), Parsed::Unsupported);
        assert_eq!(parse(b"KILL /*!50000 QUERY */ 5"), Parsed::Unsupported);
        assert_eq!(parse(b"KILL 99999999999999999999999"), Parsed::Unsupported);
        assert_eq!(parse(b"KILL @id"), Parsed::Unsupported);
        assert_eq!(parse(b"KILL /* unterminated"), Parsed::Other);
    }

    #[test]
    fn backend_sql() {
        assert_eq!(
            Kill {
                query_only: true,
                id: 3
            }
            .backend_sql(77),
            "KILL QUERY 77"
        );
    }
}
