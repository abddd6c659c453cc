//! Does a statement touch a given table? A conservative check for temporary-table routing.
//!
//! A router that has seen `CREATE TEMPORARY TABLE tmp` in a session must send every later
//! statement that reads `tmp` to the primary, where the table lives. Rather than parse table
//! references (joins, subqueries, aliases, `db.t`), [`mentions_table`] asks whether any
//! identifier of the statement (outside strings and comments) has the table's name. A column or
//! alias that happens to share the name sends the statement to the primary too, which is safe;
//! a real reference is never missed.

use crate::classify::TableName;
use crate::lexer::{Lexer, TokenKind};

/// True if any identifier in `sql` (unquoted, or backtick-quoted) equals the name of one of
/// `tables`, ignoring ASCII case and the schema. Allocation-free.
pub fn mentions_table(sql: &[u8], tables: &[TableName]) -> bool {
    if tables.is_empty() {
        return false;
    }
    Lexer::new(sql).any(|t| match t.kind {
        TokenKind::Word => tables.iter().any(|n| n.name.eq_ignore_ascii_case(t.text)),
        TokenKind::QuotedIdent => {
            let inner = t.inner();
            tables.iter().any(|n| quoted_eq(inner, &n.name))
        }
        _ => false,
    })
}

/// Compares the inside of a backtick-quoted identifier (doubled backticks as escapes) with an
/// unquoted name, ignoring ASCII case.
fn quoted_eq(quoted: &[u8], name: &[u8]) -> bool {
    let mut q = quoted.iter();
    let mut n = name.iter();
    loop {
        match (q.next(), n.next()) {
            (None, None) => return true,
            (Some(&a), Some(&b)) => {
                if !a.eq_ignore_ascii_case(&b) {
                    return false;
                }
                if a == b'`' && q.next() != Some(&b'`') {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify;

    fn temp(sql: &str) -> Vec<TableName> {
        classify(sql.as_bytes()).tables
    }

    #[test]
    fn finds_references() {
        let t = temp("CREATE TEMPORARY TABLE tmp (a INT)");
        assert!(mentions_table(b"SELECT * FROM tmp", &t));
        assert!(mentions_table(
            b"select * from t join TMP on t.a = TMP.a",
            &t
        ));
        assert!(mentions_table(b"SELECT * FROM db.`tmp` x", &t));
        assert!(mentions_table(b"SELECT (SELECT a FROM tmp) FROM t", &t));
        assert!(mentions_table(
            b"SELECT * FROM t /*! JOIN tmp USING (a) */",
            &t
        ));
        assert!(!mentions_table(b"SELECT 'tmp' FROM t -- tmp", &t));
        assert!(!mentions_table(b"SELECT * FROM tmp2", &t));
        assert!(!mentions_table(b"SELECT * FROM tmp", &[]));
    }

    #[test]
    fn quoted_names() {
        let t = temp("CREATE TEMPORARY TABLE `a``b` (x INT)");
        assert_eq!(t[0].name, b"a`b");
        assert!(mentions_table(b"SELECT * FROM `a``b`", &t));
        assert!(!mentions_table(b"SELECT * FROM `a`", &t));
        assert!(!mentions_table(b"SELECT * FROM `a``bc`", &t));
        assert!(quoted_eq(b"AbC", b"abc"));
        assert!(!quoted_eq(b"ab", b"abc"));
        assert!(!quoted_eq(b"a`", b"a`"));
    }
}
