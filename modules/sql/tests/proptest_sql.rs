//! Property tests of the lexer and the classifier over any input: arbitrary bytes (statements
//! need not be UTF-8), arbitrary strings, and SQL-like text made of the fragments that steer the
//! lexer (quotes, escapes, comment openers, executable comments) and the classifier (leading
//! keywords, `SET STATEMENT ... FOR`, `CREATE TEMPORARY TABLE`). Every function here must
//! return for every input, never panic, and return nothing larger than its input allows.

use proptest::prelude::*;

use switchyard_sql::builtins;
use switchyard_sql::classify::{dropped_database, use_target};
use switchyard_sql::{
    classify, classify_with_mode, contains_ignore_case, digest, find_comment, fingerprint,
    may_have_comment, mentions_table, parse_prepare, reads_thread_ids, statement_name, Flags,
    Lexer, SqlMode, StatementKind, TableName, TokenKind,
};

/// Failures are reported, not saved to files: a failure found is kept as a named test.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::with_cases(cases)
    }
}

// One fragment a line would be 130 lines; grouped, the list reads as what it covers.
#[rustfmt::skip]
const FRAGMENTS: &[&[u8]] = &[
    // Leading keywords and the words that change what a statement is.
    b"SELECT", b"INSERT", b"UPDATE", b"DELETE", b"REPLACE", b"SET", b"STATEMENT", b"FOR",
    b"USE", b"BEGIN", b"START", b"TRANSACTION", b"READ", b"ONLY", b"COMMIT", b"ROLLBACK",
    b"AND", b"CHAIN", b"SAVEPOINT", b"XA", b"SHOW", b"EXPLAIN", b"ANALYZE", b"CALL",
    b"PREPARE", b"EXECUTE", b"IMMEDIATE", b"DEALLOCATE", b"DROP", b"CREATE", b"TEMPORARY",
    b"TABLE", b"IF", b"EXISTS", b"NOT", b"PROCEDURE", b"FUNCTION", b"ALTER", b"WITH",
    b"RECURSIVE", b"AS", b"FROM", b"INTO", b"VALUES", b"LOCK", b"UNLOCK", b"TABLES", b"HANDLER",
    b"LOAD", b"DATA", b"DO", b"GRANT", b"SHARE", b"MODE", b"IN", b"NAMES", b"autocommit",
    b"GLOBAL", b"SESSION", b"GET_LOCK", b"LAST_INSERT_ID", b"CONNECTION_ID", b"PROCESSLIST",
    b"DATABASE", b"t", b"db.t", b"f", b"x1",
    // Symbols, quotes and escapes.
    b"(", b")", b";", b",", b".", b"=", b":=", b"<=>", b"->>", b"-", b"*", b"?", b"'", b"\"",
    b"`", b"\\", b"''", b"``", b"'a\\'",
    // Comment openers and closers, executable comments, optimizer hints.
    b"/*", b"*/", b"/*!", b"/*!40101", b"/*M!100108", b"/*+", b"--", b"-- ", b"#", b"\n",
    // Whitespace, weighted by repetition.
    b" ", b" ", b" ", b"\t",
    // Variables and literals.
    b"@", b"@@", b"@x", b"@@global.", b"@'u'", b"0x", b"0x1F", b"X'", b"b'", b"N'", b"0b", b"1",
    b"1.5", b"1e", b"1e+3", b"123abc",
    // Non-ASCII and invalid UTF-8, and a NUL.
    b"\xc3\xa9", b"\xff", b"\x00",
];

/// SQL-like text: fragments, sometimes with a space between them.
fn sqlish() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec((prop::sample::select(FRAGMENTS), any::<bool>()), 0..80).prop_map(
        |parts| {
            let mut s = Vec::new();
            for (f, space) in parts {
                s.extend_from_slice(f);
                if space {
                    s.push(b' ');
                }
            }
            s
        },
    )
}

/// Any input a client can send as a query: SQL-like text, arbitrary bytes, and arbitrary
/// strings (also bytes made text with lossy UTF-8 decoding, as a text-only API would get).
fn query() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => sqlish(),
        2 => prop::collection::vec(any::<u8>(), 0..128),
        1 => any::<String>().prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..128)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned().into_bytes()),
    ]
}

fn mode() -> impl Strategy<Value = SqlMode> {
    any::<(bool, bool, bool)>().prop_map(|(no_backslash_escapes, ansi_quotes, oracle)| SqlMode {
        no_backslash_escapes,
        ansi_quotes,
        oracle,
    })
}

fn within(outer: &[u8], inner: &[u8]) -> bool {
    if inner.is_empty() {
        return true;
    }
    let (o, i) = (outer.as_ptr_range(), inner.as_ptr_range());
    o.start <= i.start && i.end <= o.end
}

proptest! {
    #![proptest_config(config(2000))]

    /// Tokens are non-empty slices of the input at their offsets, in order and without
    /// overlap, so there are never more tokens than bytes; `peek` sees the next one.
    #[test]
    fn lexer_tokens_are_ordered_slices_of_the_input(sql in query(), mode in mode()) {
        let mut lex = Lexer::with_mode(&sql, mode);
        let mut end = 0;
        let mut n = 0;
        loop {
            let peeked = lex.peek();
            let Some(t) = lex.next() else {
                prop_assert!(peeked.is_none());
                break;
            };
            prop_assert_eq!(peeked, Some(t));
            n += 1;
            prop_assert!(n <= sql.len());
            prop_assert!(!t.text.is_empty());
            prop_assert!(t.start >= end, "token at {} overlaps the previous one ending at {}", t.start, end);
            prop_assert_eq!(t.text, &sql[t.start..t.start + t.text.len()]);
            prop_assert!(within(t.text, t.inner()));
            if t.kind == TokenKind::Placeholder {
                prop_assert_eq!(t.text, b"?");
            }
            end = t.start + t.text.len();
        }
        prop_assert!(end <= sql.len());
    }

    /// Classification is total and consistent: every input gets a kind and flags, the count of
    /// statements is that of the non-empty ones (so no more than the tokens), several set
    /// `MULTI_STATEMENT`, none is `Other`, and the table names it keeps come from the input.
    #[test]
    fn classification_is_total(sql in query(), mode in mode()) {
        let c = classify_with_mode(&sql, mode);
        let tokens = Lexer::with_mode(&sql, mode).filter(|t| !t.is_symbol(b";")).count();
        prop_assert!(c.statements as usize <= tokens);
        prop_assert_eq!(c.flags.contains(Flags::MULTI_STATEMENT), c.statements > 1);
        if c.statements == 0 {
            prop_assert_eq!(c.kind, StatementKind::Other);
            prop_assert!(c.flags.is_empty());
        }
        let table_bytes: usize = c
            .tables
            .iter()
            .map(|t| t.name.len() + t.schema.as_ref().map_or(0, Vec::len))
            .sum();
        prop_assert!(table_bytes <= sql.len());
        for name in c.flags.names() {
            prop_assert!(Flags::from_name(name).is_some_and(|f| c.flags.contains(f)));
        }
        let _ = format!("{:?}", c.flags);
        if mode == SqlMode::default() {
            prop_assert_eq!(classify(&sql), c);
        }
    }

    /// Whatever a session's `sql_mode` value, parsing it ends.
    #[test]
    fn sql_mode_values_parse(value in prop_oneof![
        prop::collection::vec(
            prop::sample::select(vec!["ORACLE", "ansi_quotes", "NO_BACKSLASH_ESCAPES", " ANSI ", "", "x"]),
            0..5,
        ).prop_map(|v| v.join(",").into_bytes()),
        prop::collection::vec(any::<u8>(), 0..32),
    ]) {
        let mode = SqlMode::from_sql_mode(&value);
        if mode.oracle {
            prop_assert!(mode.ansi_quotes);
        }
    }

    /// The digest replaces literals and normalises gaps, so it grows only by the spaces it puts
    /// between tokens and by U+FFFD (three bytes) for each invalid byte.
    #[test]
    fn digest_is_bounded(sql in query()) {
        let d = digest(&sql);
        prop_assert!(d.len() <= 4 * sql.len(), "{} bytes of digest for {}", d.len(), sql.len());
        prop_assert_eq!(fingerprint(&d), fingerprint(&digest(&sql)));
    }

    /// Comments are found only in the input, and only where a comment can open.
    #[test]
    fn comments_are_views_of_the_input(sql in query(), mode in mode(), needle in prop::collection::vec(any::<u8>(), 0..4)) {
        let mut bodies = 0;
        let found: Option<()> = find_comment(&sql, mode, |body| {
            bodies += 1;
            assert!(within(&sql, body), "a comment body outside the input");
            None
        });
        prop_assert!(found.is_none());
        prop_assert!(bodies <= sql.len());
        if !may_have_comment(&sql) {
            prop_assert_eq!(bodies, 0);
        }
        let naive = needle.is_empty()
            || sql.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(&needle));
        prop_assert_eq!(contains_ignore_case(&sql, &needle), naive);
    }

    /// The connection-id check agrees with a plain search for its two words.
    #[test]
    fn thread_id_check_is_a_plain_search(sql in query()) {
        let naive = contains_ignore_case(&sql, b"processlist") || contains_ignore_case(&sql, b"connection_id");
        prop_assert_eq!(reads_thread_ids(&sql), naive);
    }

    /// A statement that names a table as an identifier always mentions it: the check may err
    /// towards the primary but never misses a real reference.
    #[test]
    fn mentioned_tables_are_never_missed(sql in query(), pick in any::<prop::sample::Index>()) {
        let words: Vec<&[u8]> = Lexer::new(&sql)
            .filter(|t| t.kind == TokenKind::Word)
            .map(|t| t.text)
            .collect();
        prop_assert!(!mentions_table(&sql, &[]));
        if !words.is_empty() {
            let name = words[pick.index(words.len())].to_ascii_lowercase();
            let tables = [TableName { schema: None, name }];
            prop_assert!(mentions_table(&sql, &tables));
        }
        let _ = mentions_table(&sql, &classify(&sql).tables);
    }

    /// The helpers that take names out of statements return parts of them.
    #[test]
    fn statement_helpers_are_bounded(sql in prop_oneof![
        query(),
        (prop::sample::select(vec![&b"PREPARE s FROM "[..], b"EXECUTE ", b"DEALLOCATE PREPARE ", b"USE ", b"DROP DATABASE IF EXISTS "]), query())
            .prop_map(|(head, tail)| [head, &tail].concat()),
    ]) {
        if let Some(p) = parse_prepare(&sql) {
            prop_assert!(p.name.len() <= sql.len());
            if let Some(source) = &p.source {
                prop_assert!(source.len() <= sql.len());
                let _ = classify(source);
            }
        }
        if let Some(name) = statement_name(&sql) {
            prop_assert!(name.len() <= sql.len());
        }
        // Names are decoded lossily: an invalid byte becomes U+FFFD, three bytes.
        for name in [use_target(&sql), dropped_database(&sql)].into_iter().flatten() {
            prop_assert!(name.len() <= 3 * sql.len());
        }
    }

    /// Any name looked up among the built-ins, of any length and case.
    #[test]
    fn builtin_lookup_is_total(name in prop_oneof![
        prop::collection::vec(any::<u8>(), 0..40),
        prop::sample::select(vec!["concat", "CONCAT", "if", "in", "my_func", "LAST_INSERT_ID"]).prop_map(|s| s.as_bytes().to_vec()),
    ]) {
        let found = builtins::lookup(&name);
        prop_assert_eq!(builtins::is_builtin(&name), found.is_some());
        prop_assert_eq!(builtins::is_native_function(&name), found == Some(builtins::Builtin::Native));
        prop_assert_eq!(builtins::lookup(&name.to_ascii_uppercase()), found);
    }
}
