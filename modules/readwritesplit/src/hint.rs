//! Routing hints in SQL comments:
//!
//! ```sql
//! SELECT * FROM orders /* switchyard: route=primary */
//! -- switchyard: route=replica
//! # switchyard: route=server:db2
//! ```
//!
//! The prefix and keys ignore case and spacing; a server name is taken as written. Only real
//! comments count (the lexer tells them from strings), and only texts that contain
//! `switchyard` are looked at, so statements without hints pay a short byte scan.

use switchyard_sql::{contains_ignore_case, find_comment, may_have_comment, SqlMode};

/// Where a hint asks a statement to go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hint<'a> {
    Primary,
    Replica,
    /// A server by its configured name.
    Server(&'a [u8]),
}

const PREFIX: &[u8] = b"switchyard";

/// What ends a value.
const STOPS: &[u8] = b", \t\r\n";

/// The first routing hint in the comments of `sql`, if any.
pub(crate) fn parse(sql: &[u8], mode: SqlMode) -> Option<Hint<'_>> {
    if !may_have_comment(sql) || !contains_ignore_case(sql, PREFIX) {
        return None;
    }
    find_comment(sql, mode, in_comment)
}

/// Parses a comment body: `switchyard: key=value [key=value ...]` (pairs separated by spaces
/// or commas). Unknown keys are skipped; the first known `route` wins.
fn in_comment(body: &[u8]) -> Option<Hint<'_>> {
    let body = body.trim_ascii_start();
    if body.len() < PREFIX.len() || !body[..PREFIX.len()].eq_ignore_ascii_case(PREFIX) {
        return None;
    }
    let rest = body[PREFIX.len()..].trim_ascii_start();
    let mut rest = rest.strip_prefix(b":")?;
    loop {
        rest = rest.trim_ascii_start();
        rest = rest.strip_prefix(b",").unwrap_or(rest).trim_ascii_start();
        if rest.is_empty() {
            return None;
        }
        let (key, after) = split_at_any(rest, b"=, \t\r\n");
        let after = after.trim_ascii_start();
        let Some(after) = after.strip_prefix(b"=") else {
            rest = after; // a key without a value
            continue;
        };
        let (value, after) = value(after.trim_ascii_start());
        rest = after;
        if key.eq_ignore_ascii_case(b"route") {
            if let Some(hint) = route(value) {
                return Some(hint);
            }
        }
    }
}

/// A value runs to the next space or comma; `server: db2` may have a space after its colon.
fn value(text: &[u8]) -> (&[u8], &[u8]) {
    let (value, rest) = split_at_any(text, STOPS);
    if !value.eq_ignore_ascii_case(b"server:") {
        return (value, rest);
    }
    let name_start = text.len() - rest.trim_ascii_start().len();
    let (_, rest) = split_at_any(&text[name_start..], STOPS);
    (&text[..text.len() - rest.len()], rest)
}

fn route(value: &[u8]) -> Option<Hint<'_>> {
    if value.eq_ignore_ascii_case(b"primary") || value.eq_ignore_ascii_case(b"master") {
        return Some(Hint::Primary);
    }
    if value.eq_ignore_ascii_case(b"replica") || value.eq_ignore_ascii_case(b"slave") {
        return Some(Hint::Replica);
    }
    let kind = b"server:";
    if value.len() > kind.len() && value[..kind.len()].eq_ignore_ascii_case(kind) {
        let name = value[kind.len()..].trim_ascii();
        return (!name.is_empty()).then_some(Hint::Server(name));
    }
    None
}

fn split_at_any<'a>(text: &'a [u8], stops: &[u8]) -> (&'a [u8], &'a [u8]) {
    let end = text
        .iter()
        .position(|c| stops.contains(c))
        .unwrap_or(text.len());
    text.split_at(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hint(sql: &str) -> Option<Hint<'_>> {
        parse(sql.as_bytes(), SqlMode::default())
    }

    #[test]
    fn all_comment_styles() {
        assert_eq!(
            hint("SELECT 1 /* switchyard: route=primary */"),
            Some(Hint::Primary)
        );
        assert_eq!(
            hint("/*switchyard:route=replica*/ SELECT 1"),
            Some(Hint::Replica)
        );
        assert_eq!(
            hint("SELECT 1 -- switchyard: route=server:db2\n"),
            Some(Hint::Server(b"db2"))
        );
        assert_eq!(
            hint("SELECT 1 # switchyard: route=master"),
            Some(Hint::Primary)
        );
        assert_eq!(
            hint("SELECT a, /* switchyard: route=slave */ b FROM t"),
            Some(Hint::Replica)
        );
    }

    #[test]
    fn case_and_spacing_are_free_but_names_are_kept() {
        assert_eq!(
            hint("SELECT 1 /*  SwitchYard :  Route = PRIMARY  */"),
            Some(Hint::Primary)
        );
        assert_eq!(
            hint("SELECT 1 /* switchyard: ROUTE=Server: DB2 */"),
            Some(Hint::Server(b"DB2"))
        );
        assert_eq!(
            hint("SELECT 1 /* switchyard: owner=billing, route=replica */"),
            Some(Hint::Replica)
        );
        assert_eq!(
            hint("SELECT 1 /* switchyard: route=nowhere route=primary */"),
            Some(Hint::Primary)
        );
    }

    #[test]
    fn not_hints() {
        assert_eq!(hint("SELECT 1"), None);
        assert_eq!(hint("SELECT 'switchyard: route=primary'"), None);
        assert_eq!(hint("SELECT '/* switchyard: route=primary */'"), None);
        assert_eq!(hint("SELECT `switchyard` FROM switchyard"), None);
        assert_eq!(hint("SELECT 1 /* switchyard route=primary */"), None);
        assert_eq!(hint("SELECT 1 /* switchyard: route */"), None);
        assert_eq!(hint("SELECT 1 /* switchyard: route= */"), None);
        assert_eq!(hint("SELECT 1 /* switchyard: route=server: */"), None);
        assert_eq!(hint("SELECT 1 /* app: switchyard: route=primary */"), None);
        assert_eq!(hint("SELECT 1 /*! switchyard */"), None);
        assert_eq!(
            hint("SELECT 1 /* switchyard: route=primary"),
            Some(Hint::Primary)
        );
        // `--` needs a space after it to start a comment.
        assert_eq!(hint("SELECT 1 --switchyard: route=primary"), None);
        assert_eq!(hint("switchyard"), None);
        assert_eq!(hint(""), None);
    }
}
