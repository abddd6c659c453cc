//! The comments of a statement, where routing hints live. Only real comments count: the
//! lexer tells them from strings and quoted names, and the content of an executable comment
//! (`/*! ... */`) is SQL, not a comment.

use crate::lexer::{Lexer, SqlMode};

/// Calls `f` with the body of each comment of `sql` in order (without `/*`, `*/`, `#` or
/// `--`), and returns the first answer that is `Some`. Statements without a byte that could
/// open a comment are not lexed at all.
pub fn find_comment<'a, T>(
    sql: &'a [u8],
    mode: SqlMode,
    mut f: impl FnMut(&'a [u8]) -> Option<T>,
) -> Option<T> {
    if !may_have_comment(sql) {
        return None;
    }
    // Comments live in the gaps between tokens.
    let mut gap_start = 0;
    for token in Lexer::with_mode(sql, mode) {
        if let Some(found) = in_gap(&sql[gap_start..token.start.max(gap_start)], &mut f) {
            return Some(found);
        }
        gap_start = token.start + token.text.len();
    }
    in_gap(&sql[gap_start.min(sql.len())..], &mut f)
}

/// Whether `hay` contains `needle`, ignoring ASCII case; a cheap test before lexing for the
/// tag of a hint. Compares the whole needle only where its first letter occurs.
pub fn contains_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
    let Some(&first) = needle.first() else {
        return true;
    };
    let first = first.to_ascii_lowercase();
    hay.windows(needle.len())
        .any(|w| w[0].to_ascii_lowercase() == first && w.eq_ignore_ascii_case(needle))
}

/// False if `sql` has none of the bytes that open a comment (`/*`, `#`, `-- `). Scans fixed
/// blocks without an early exit inside a block, so that the compiler vectorises it: most
/// statements have no comment, and this is all they pay when it is tested first.
pub fn may_have_comment(sql: &[u8]) -> bool {
    let opens = |b: u8| (b == b'/') | (b == b'#') | (b == b'-');
    let mut blocks = sql.chunks_exact(16);
    for block in &mut blocks {
        if block.iter().fold(false, |seen, &b| seen | opens(b)) {
            return true;
        }
    }
    blocks.remainder().iter().any(|&b| opens(b))
}

/// Looks through the comments of `gap`, a run of whitespace, comments and operators.
fn in_gap<'a, T>(gap: &'a [u8], f: &mut impl FnMut(&'a [u8]) -> Option<T>) -> Option<T> {
    let mut i = 0;
    while i < gap.len() {
        let rest = &gap[i..];
        let body = if rest.starts_with(b"/*!") || rest.starts_with(b"/*M!") {
            // The opening of an executable comment: its content is SQL, not a comment.
            i += 3;
            continue;
        } else if rest.starts_with(b"/*") {
            let end = find(&rest[2..], b"*/").map_or(rest.len(), |e| e + 2);
            i += end + 2;
            &rest[2..end]
        } else if rest.starts_with(b"#") || rest.starts_with(b"--") {
            let skip = if rest[0] == b'#' { 1 } else { 2 };
            let end = rest.iter().position(|&c| c == b'\n').unwrap_or(rest.len());
            i += end + 1;
            &rest[skip..end]
        } else {
            i += 1;
            continue;
        };
        if let Some(found) = f(body) {
            return Some(found);
        }
    }
    None
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(sql: &str) -> Vec<String> {
        let mut seen = Vec::new();
        find_comment::<()>(sql.as_bytes(), SqlMode::default(), |c| {
            seen.push(String::from_utf8_lossy(c).into_owned());
            None
        });
        seen
    }

    #[test]
    fn every_comment_style_in_order() {
        assert_eq!(
            all("/* a */ SELECT 1 # b\n, 2 -- c\n FROM t /*d*/"),
            [" a ", " b", " c", "d"]
        );
        assert_eq!(all("SELECT 1 /* open"), [" open"]);
    }

    #[test]
    fn strings_names_and_executable_comments_are_not_comments() {
        assert!(all("SELECT '/* a */', \"# b\", `-- c` FROM t").is_empty());
        assert!(all("SELECT 1 /*! , 2 */").is_empty());
        assert!(all("SELECT 1 /*M!100000 , 2 */").is_empty());
        assert!(all("SELECT 1 --not a comment").is_empty());
        assert!(all("SELECT 10-1").is_empty());
    }

    #[test]
    fn the_sql_mode_decides_where_a_string_ends() {
        let sql = br"SELECT 'a\' /* x */ '";
        let found = |mode| find_comment(sql, mode, |c| Some(c.to_vec()));
        assert_eq!(found(SqlMode::default()), None);
        let nbe = SqlMode {
            no_backslash_escapes: true,
            ..SqlMode::default()
        };
        assert_eq!(found(nbe), Some(b" x ".to_vec()));
    }

    #[test]
    fn prefilters() {
        assert!(may_have_comment(b"SELECT 1 # x"));
        assert!(may_have_comment(
            &[
                b"SELECT 1 FROM t WHERE a = 1 AND b = 2 AND c = 3".as_slice(),
                b"/"
            ]
            .concat()
        ));
        assert!(!may_have_comment(
            b"SELECT c FROM sbtest1 WHERE id=1 AND k=2 AND pad='x'"
        ));
        assert!(contains_ignore_case(b"xx SWITCHYARD", b"switchyard"));
        assert!(contains_ignore_case(b"MaxScale", b"maxscale"));
        assert!(!contains_ignore_case(b"switchyar", b"switchyard"));
        assert!(!contains_ignore_case(b"", b"maxscale"));
    }
}
