//! Statement digests for the audit feed: the text with literals replaced by `?` and
//! whitespace and comments normalised, plus a stable 64-bit fingerprint of that text.
//!
//! `SELECT * FROM t WHERE id = 42 /* x */` and `select *  from t where id='abc'` differ in case
//! only after digesting (`SELECT * FROM t WHERE id = ?` / `select * from t where id = ?`):
//! words keep their spelling, so the digest is still readable as the application wrote it.

use crate::lexer::{Lexer, TokenKind};

/// Words that a `(` follows without being a function call: `IN (`, `VALUES (`, ...
const NOT_CALLS: [&[u8]; 14] = [
    b"IN", b"VALUES", b"AS", b"USING", b"ON", b"AND", b"OR", b"NOT", b"EXISTS", b"WHERE", b"FROM",
    b"JOIN", b"SELECT", b"INTO",
];

/// The canonical text of `sql`: string, number, hex/bit literals and placeholders become `?`;
/// each run of whitespace or comments between two tokens becomes one space; a space is also put
/// around operators written without one (`id=1` → `id = ?`) but never before `,`, `)` or `.` or
/// after `(` or `.`. Invalid UTF-8 inside identifiers is replaced with U+FFFD.
pub fn digest(sql: &[u8]) -> String {
    let mut out = String::with_capacity(sql.len().min(4096));
    digest_into(sql, &mut out);
    out
}

/// [`digest()`] written into `out` (cleared first), to reuse its buffer.
pub fn digest_into(sql: &[u8], out: &mut String) {
    out.clear();
    let mut prev: Option<(TokenKind, &[u8])> = None;
    for t in Lexer::new(sql) {
        let literal = matches!(
            t.kind,
            TokenKind::String | TokenKind::Number | TokenKind::HexOrBit | TokenKind::Placeholder
        );
        if let Some((pk, pt)) = prev {
            let tight_after = pk == TokenKind::Symbol && (pt == b"(" || pt == b".");
            let tight_before =
                t.kind == TokenKind::Symbol && matches!(t.text, b"," | b")" | b"." | b";" | b"(");
            // A function call keeps its `(` tight: `COUNT(*)`, but `IN (` gets a space.
            let call = t.text == b"("
                && pk == TokenKind::Word
                && !NOT_CALLS.iter().any(|k| pt.eq_ignore_ascii_case(k));
            if !(tight_after || (tight_before && (t.text != b"(" || call))) {
                out.push(' ');
            }
        }
        if literal {
            out.push('?');
        } else {
            out.push_str(&String::from_utf8_lossy(t.text));
        }
        prev = Some((t.kind, t.text));
    }
}

/// A stable 64-bit fingerprint (FNV-1a) of a digest text, for grouping statements.
pub fn fingerprint(digest_text: &str) -> u64 {
    digest_text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> String {
        digest(s.as_bytes())
    }

    #[test]
    fn literals_become_placeholders() {
        assert_eq!(
            d("SELECT * FROM t WHERE id = 42"),
            "SELECT * FROM t WHERE id = ?"
        );
        assert_eq!(
            d("select *  from t where id='abc' -- c"),
            "select * from t where id = ?"
        );
        assert_eq!(
            d("INSERT INTO t VALUES (1, 'a', 0x1F, ?)"),
            "INSERT INTO t VALUES (?, ?, ?, ?)"
        );
        assert_eq!(
            d("SELECT COUNT(*) FROM db.t WHERE a IN (1,2)"),
            "SELECT COUNT(*) FROM db.t WHERE a IN (?, ?)"
        );
        assert_eq!(
            d("UPDATE t SET k=k+1 WHERE id=5"),
            "UPDATE t SET k = k + ? WHERE id = ?"
        );
        assert_eq!(d("/* hint */ SELECT\n\t1 /*!40001 + 2 */"), "SELECT ? + ?");
        assert_eq!(d(""), "");
    }

    #[test]
    fn same_shape_same_fingerprint() {
        let a = fingerprint(&d("SELECT c FROM t WHERE id = 1"));
        let b = fingerprint(&d("SELECT c   FROM t WHERE id=99 # x"));
        let c = fingerprint(&d("SELECT c FROM u WHERE id = 1"));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn non_utf8_is_replaced_not_fatal() {
        assert_eq!(d("SELECT '\u{e9}' FROM t"), "SELECT ? FROM t");
        let s = digest(b"SELECT x\xff FROM t");
        assert!(s.starts_with("SELECT x"));
    }
}
