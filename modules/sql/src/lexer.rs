//! An allocation-free lexer for the MySQL/MariaDB SQL dialect over raw bytes.
//!
//! It never fails and never panics: unterminated strings, quoted identifiers and comments end
//! at the end of the input. Comments are skipped, except MySQL/MariaDB executable comments
//! (`/*! ... */`, `/*!40101 ... */`, `/*M!100108 ... */`), whose content is lexed as SQL because
//! the server executes it (the version number after `!` is skipped; the lexer assumes the
//! server is new enough). Optimizer hints (`/*+ ... */`) are ordinary comments here.

/// What a [`Token`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// A keyword or an unquoted identifier (also identifiers starting with a digit, `1abc`).
    Word,
    /// A backtick-quoted identifier (or `"..."` with `ANSI_QUOTES`), quotes included in the
    /// text.
    QuotedIdent,
    /// A `'...'` or `"..."` string literal (also `N'...'`), quotes included in the text. With
    /// `ANSI_QUOTES`, `"..."` is a [`TokenKind::QuotedIdent`].
    String,
    /// A decimal number: `12`, `1.5`, `3e-2`.
    Number,
    /// A hexadecimal or bit literal: `0x1F`, `X'1F'`, `0b101`, `b'101'`.
    HexOrBit,
    /// A user variable: `@x`, `@'x'`, `` @`x` ``, `@"x"` (text includes the `@`).
    UserVar,
    /// A system variable: `@@x`, `@@global.x`, `@@session.x` (text includes the `@@`).
    SysVar,
    /// A `?` placeholder.
    Placeholder,
    /// An operator or punctuation: `;`, `(`, `,`, `:=`, `<=>`, `->>`, ...
    Symbol,
}

/// One token: its kind, its raw bytes and where it starts in the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token<'a> {
    /// The token's kind.
    pub kind: TokenKind,
    /// The raw bytes of the token, quotes and prefixes included.
    pub text: &'a [u8],
    /// Byte offset of the token in the lexed input.
    pub start: usize,
}

impl<'a> Token<'a> {
    /// True if this is an unquoted word equal to `kw`, ignoring ASCII case.
    #[inline]
    pub fn is_word(&self, kw: &[u8]) -> bool {
        self.kind == TokenKind::Word && self.text.eq_ignore_ascii_case(kw)
    }

    /// True if this is the symbol `s`.
    #[inline]
    pub fn is_symbol(&self, s: &[u8]) -> bool {
        self.kind == TokenKind::Symbol && self.text == s
    }

    /// The text without its surrounding quotes (strings, quoted identifiers) or its `@`/`@@`
    /// prefix and quotes (variables). Escapes are left as they are.
    pub fn inner(&self) -> &'a [u8] {
        let t = self.text;
        let t = match self.kind {
            TokenKind::SysVar => t.get(2..).unwrap_or(&[]),
            TokenKind::UserVar => t.get(1..).unwrap_or(&[]),
            TokenKind::String if t.len() >= 2 && (t[0] == b'N' || t[0] == b'n') => &t[1..],
            _ => t,
        };
        match t.first() {
            Some(&q @ (b'\'' | b'"' | b'`')) => {
                let end = if t.len() >= 2 && t[t.len() - 1] == q {
                    t.len() - 1
                } else {
                    t.len()
                };
                &t[1..end.max(1)]
            }
            _ => t,
        }
    }
}

/// True for bytes that may appear in an unquoted identifier (any non-ASCII byte counts, so
/// UTF-8 and other multi-byte identifiers stay one word).
#[inline]
pub fn is_ident_byte(b: u8) -> bool {
    IDENT[b as usize]
}

static IDENT: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80;
        i += 1;
    }
    t
};

#[inline]
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// A lexer over one query text. It is an [`Iterator`] of [`Token`]s and cheap to clone, so a
/// clone serves as lookahead.
#[derive(Clone, Debug)]
pub struct Lexer<'a> {
    src: &'a [u8],
    pos: usize,
    in_exec_comment: bool,
    backslash_escapes: bool,
    ansi_quotes: bool,
}

/// How the session's `sql_mode` changes lexing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SqlMode {
    /// `NO_BACKSLASH_ESCAPES`: a backslash in a string is an ordinary character, so `'a\'`
    /// ends after the backslash. A router that tracks `sql_mode` must pass this, or a string
    /// could hide a `;` and a second statement from the classifier.
    pub no_backslash_escapes: bool,
    /// `ANSI_QUOTES` (also set by `sql_mode=ORACLE`, `ANSI`, ...): `"..."` is an identifier
    /// ([`TokenKind::QuotedIdent`]) in which a backslash is an ordinary character, so
    /// `"a\"` ends after the backslash. Like `no_backslash_escapes`, it decides where a quoted
    /// run ends, so a router must pass it.
    pub ansi_quotes: bool,
    /// `ORACLE` (`sql_mode=ORACLE`): a statement `name := expr` assigns a system variable, as
    /// `SET name = expr` does.
    pub oracle: bool,
}

impl SqlMode {
    /// The modes that matter here from a `@@sql_mode` value (`"ORACLE,NO_BACKSLASH_ESCAPES"`,
    /// any case; combination modes such as `ORACLE` and `ANSI` included, although the server
    /// reports them expanded).
    pub fn from_sql_mode(value: &[u8]) -> SqlMode {
        let mut mode = SqlMode::default();
        for name in value.split(|&c| c == b',') {
            let name = name.trim_ascii();
            let is = |s: &[u8]| name.eq_ignore_ascii_case(s);
            if is(b"NO_BACKSLASH_ESCAPES") {
                mode.no_backslash_escapes = true;
            } else if is(b"ORACLE") {
                mode.oracle = true;
                mode.ansi_quotes = true;
            } else if is(b"ANSI_QUOTES")
                || is(b"ANSI")
                || is(b"DB2")
                || is(b"MAXDB")
                || is(b"MSSQL")
                || is(b"POSTGRESQL")
            {
                mode.ansi_quotes = true;
            }
        }
        mode
    }

    /// The mode a `SET [SESSION] sql_mode = '...'` statement gives the session, quoted or as a
    /// bare word (`ORACLE`, `DEFAULT`); `None` when `sql` sets none, or sets it to a value
    /// only the server can work out (an expression, a variable).
    pub fn assigned_by(sql: &[u8]) -> Option<SqlMode> {
        let at = sql
            .windows(8)
            .position(|w| w.eq_ignore_ascii_case(b"sql_mode"))?;
        let rest = &sql[at + 8..];
        let eq = rest.iter().position(|&b| b == b'=')?;
        let value = rest[eq + 1..].trim_ascii_start();
        let mode = match value.first() {
            Some(&q @ (b'\'' | b'"')) => {
                let end = value[1..].iter().position(|&b| b == q)?;
                &value[1..1 + end]
            }
            _ => {
                // A bare word, not a call or a variable.
                let end = value
                    .iter()
                    .position(|&b| !(b.is_ascii_alphanumeric() || b == b'_'))
                    .unwrap_or(value.len());
                let after = value[end..].trim_ascii_start().first();
                if end == 0 || !matches!(after, None | Some(b',' | b';')) {
                    return None;
                }
                match &value[..end] {
                    w if w.eq_ignore_ascii_case(b"default") => b"",
                    w => w,
                }
            }
        };
        Some(SqlMode::from_sql_mode(mode))
    }
}

impl<'a> Lexer<'a> {
    /// A lexer at the start of `src`, for the default `sql_mode` (backslash escapes on).
    pub fn new(src: &'a [u8]) -> Self {
        Self::with_mode(src, SqlMode::default())
    }

    /// A lexer at the start of `src` for the given `sql_mode` flags.
    pub fn with_mode(src: &'a [u8], mode: SqlMode) -> Self {
        Lexer {
            src,
            pos: 0,
            in_exec_comment: false,
            backslash_escapes: !mode.no_backslash_escapes,
            ansi_quotes: mode.ansi_quotes,
        }
    }

    /// The input this lexer reads.
    pub fn source(&self) -> &'a [u8] {
        self.src
    }

    /// The next token, if any, without consuming it.
    pub fn peek(&self) -> Option<Token<'a>> {
        self.clone().next()
    }

    #[inline]
    fn at(&self, i: usize) -> u8 {
        self.src.get(i).copied().unwrap_or(0)
    }

    /// Skips whitespace and comments; enters and leaves executable comments.
    fn skip_trivia(&mut self) {
        let src = self.src;
        while self.pos < src.len() {
            let b = src[self.pos];
            if is_space(b) {
                self.pos += 1;
            } else if b == b'#'
                || b == b'-' && self.at(self.pos + 1) == b'-' && self.at(self.pos + 2) <= b' '
            {
                // `#` and `-- ` (dashes then whitespace, a control byte or the end) run to the
                // end of the line; `1--1` is arithmetic.
                self.skip_line();
            } else if b == b'/' && self.at(self.pos + 1) == b'*' {
                let c = self.at(self.pos + 2);
                if c == b'!' {
                    self.pos += 3;
                    self.enter_exec_comment();
                } else if c == b'M' && self.at(self.pos + 3) == b'!' {
                    self.pos += 4;
                    self.enter_exec_comment();
                } else {
                    let body = self.pos + 2;
                    self.pos = match find(&src[body.min(src.len())..], b"*/") {
                        Some(i) => body + i + 2,
                        None => src.len(),
                    };
                }
            } else if b == b'*' && self.in_exec_comment && self.at(self.pos + 1) == b'/' {
                self.pos += 2;
                self.in_exec_comment = false;
            } else {
                break;
            }
        }
    }

    fn enter_exec_comment(&mut self) {
        while self.pos < self.src.len() && self.src[self.pos].is_ascii_digit() {
            self.pos += 1;
        }
        self.in_exec_comment = true;
    }

    fn skip_line(&mut self) {
        match self.src[self.pos..].iter().position(|&c| c == b'\n') {
            Some(i) => self.pos += i + 1,
            None => self.pos = self.src.len(),
        }
    }

    /// Advances past a quoted run that starts at `self.pos` with quote `q`. Backslash escapes
    /// apply to strings only (not to `"..."` with `ANSI_QUOTES`); a doubled quote is always an
    /// escaped quote.
    fn skip_quoted(&mut self, q: u8) {
        let src = self.src;
        let escapes = self.backslash_escapes && (q == b'\'' || q == b'"' && !self.ansi_quotes);
        let mut i = self.pos + 1;
        while i < src.len() {
            // Jump to the next quote or backslash, eight bytes at a time.
            i += match next_special(&src[i..], q, escapes) {
                Some(n) => n,
                None => break,
            };
            if src[i] == b'\\' || src.get(i + 1) == Some(&q) {
                // A backslash escape, or a doubled quote: skip both bytes.
                i += 2;
            } else {
                self.pos = i + 1;
                return;
            }
        }
        self.pos = src.len();
    }

    fn skip_ident(&mut self) {
        while self.pos < self.src.len() && is_ident_byte(self.src[self.pos]) {
            self.pos += 1;
        }
    }

    fn lex_number(&mut self) -> TokenKind {
        let src = self.src;
        let start = self.pos;
        let c1 = self.at(start + 1);
        if src[start] == b'0' && (c1 == b'x' || c1 == b'X' || c1 == b'b' || c1 == b'B') {
            self.pos += 2;
            self.skip_ident();
            let body = &src[start + 2..self.pos];
            let ok = if c1 == b'x' || c1 == b'X' {
                !body.is_empty() && body.iter().all(u8::is_ascii_hexdigit)
            } else {
                !body.is_empty() && body.iter().all(|&c| c == b'0' || c == b'1')
            };
            return if ok {
                TokenKind::HexOrBit
            } else {
                TokenKind::Word
            };
        }
        while self.pos < src.len() && src[self.pos].is_ascii_digit() {
            self.pos += 1;
        }
        if self.at(self.pos) == b'.' {
            self.pos += 1;
            while self.pos < src.len() && src[self.pos].is_ascii_digit() {
                self.pos += 1;
            }
        }
        let e = self.at(self.pos);
        if e == b'e' || e == b'E' {
            let mut j = self.pos + 1;
            if matches!(self.at(j), b'+' | b'-') {
                j += 1;
            }
            if self.at(j).is_ascii_digit() {
                self.pos = j;
                while self.pos < src.len() && src[self.pos].is_ascii_digit() {
                    self.pos += 1;
                }
            }
        }
        if self.pos < src.len()
            && is_ident_byte(src[self.pos])
            && !src[start..self.pos].contains(&b'.')
        {
            // `123abc` is an identifier in MySQL.
            self.skip_ident();
            return TokenKind::Word;
        }
        TokenKind::Number
    }

    fn lex_at(&mut self) -> TokenKind {
        let src = self.src;
        let start = self.pos;
        // `'user'@'host'`: not a variable. (Unquoted `user@host` lexes as a word and a variable;
        // it only occurs in account statements, which go to the primary anyway.)
        if start > 0 && matches!(src[start - 1], b'\'' | b'"' | b'`') {
            self.pos += 1;
            return TokenKind::Symbol;
        }
        if self.at(start + 1) == b'@' {
            self.pos += 2;
            self.lex_var_name();
            if self.at(self.pos) == b'.' && {
                let c = self.at(self.pos + 1);
                is_ident_byte(c) || c == b'`'
            } {
                self.pos += 1;
                self.lex_var_name();
            }
            return TokenKind::SysVar;
        }
        self.pos += 1;
        let c = self.at(self.pos);
        if matches!(c, b'\'' | b'"' | b'`') {
            self.skip_quoted(c);
            return TokenKind::UserVar;
        }
        let name_start = self.pos;
        while self.pos < src.len() && (is_ident_byte(src[self.pos]) || src[self.pos] == b'.') {
            self.pos += 1;
        }
        if self.pos == name_start {
            TokenKind::Symbol
        } else {
            TokenKind::UserVar
        }
    }

    fn lex_var_name(&mut self) {
        if self.at(self.pos) == b'`' {
            self.skip_quoted(b'`');
        } else {
            self.skip_ident();
        }
    }

    fn lex_symbol(&mut self) {
        let rest = &self.src[self.pos..];
        if !matches!(rest[0], b'<' | b'>' | b'-' | b':' | b'!' | b'|' | b'&') {
            self.pos += 1;
            return;
        }
        const MULTI: [&[u8]; 12] = [
            b"<=>", b"->>", b":=", b"<=", b">=", b"<>", b"!=", b"<<", b">>", b"||", b"&&", b"->",
        ];
        for m in MULTI {
            if rest.starts_with(m) {
                self.pos += m.len();
                return;
            }
        }
        self.pos += 1;
    }
}

impl<'a> Iterator for Lexer<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        self.skip_trivia();
        let src = self.src;
        let start = self.pos;
        if start >= src.len() {
            return None;
        }
        let b = src[start];
        let kind = match b {
            b'"' if self.ansi_quotes => {
                self.skip_quoted(b);
                TokenKind::QuotedIdent
            }
            b'\'' | b'"' => {
                self.skip_quoted(b);
                TokenKind::String
            }
            b'`' => {
                self.skip_quoted(b);
                TokenKind::QuotedIdent
            }
            b'0'..=b'9' => self.lex_number(),
            b'@' => self.lex_at(),
            b'?' => {
                self.pos += 1;
                TokenKind::Placeholder
            }
            b'x' | b'X' | b'b' | b'B' | b'n' | b'N' if self.at(start + 1) == b'\'' => {
                self.pos += 1;
                self.skip_quoted(b'\'');
                if b == b'n' || b == b'N' {
                    TokenKind::String
                } else {
                    TokenKind::HexOrBit
                }
            }
            _ if is_ident_byte(b) => {
                self.skip_ident();
                TokenKind::Word
            }
            _ => {
                self.lex_symbol();
                TokenKind::Symbol
            }
        };
        Some(Token {
            kind,
            text: &src[start..self.pos],
            start,
        })
    }
}

/// The offset of the first byte in `hay` equal to `q` (or to a backslash, if `escapes`).
/// Scans a word at a time (SWAR): the lowest flagged byte of a word is always a true match.
#[inline]
fn next_special(hay: &[u8], q: u8, escapes: bool) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let has = |v: u64, b: u8| {
        let x = v ^ (LO * u64::from(b));
        x.wrapping_sub(LO) & !x & HI
    };
    let mut chunks = hay.chunks_exact(8);
    let mut base = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let v = u64::from_le_bytes(word);
        let m = has(v, q) | if escapes { has(v, b'\\') } else { 0 };
        if m != 0 {
            return Some(base + (m.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&c| c == q || escapes && c == b'\\')
        .map(|p| base + p)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<(TokenKind, String)> {
        Lexer::new(s.as_bytes())
            .map(|t| (t.kind, String::from_utf8_lossy(t.text).into_owned()))
            .collect()
    }

    fn kinds(s: &str) -> Vec<TokenKind> {
        toks(s).into_iter().map(|t| t.0).collect()
    }

    fn texts(s: &str) -> Vec<String> {
        toks(s).into_iter().map(|t| t.1).collect()
    }

    #[test]
    fn set_sql_mode_is_read_quoted_or_bare() {
        let oracle = SqlMode::from_sql_mode(b"ORACLE");
        let cases: [(&[u8], Option<SqlMode>); 7] = [
            (b"SET sql_mode=ORACLE", Some(oracle)),
            (b"SET SESSION sql_mode = 'oracle'", Some(oracle)),
            (b"SET sql_mode=DEFAULT", Some(SqlMode::default())),
            (
                b"SET @@sql_mode = \"NO_BACKSLASH_ESCAPES\", autocommit = 1",
                Some(SqlMode {
                    no_backslash_escapes: true,
                    ..SqlMode::default()
                }),
            ),
            (b"SET sql_mode = CONCAT(@@sql_mode, ',ANSI')", None),
            (b"SET sql_mode = @saved", None),
            (b"SET autocommit = 1", None),
        ];
        for (sql, want) in cases {
            assert_eq!(
                SqlMode::assigned_by(sql),
                want,
                "{}",
                String::from_utf8_lossy(sql)
            );
        }
    }

    use TokenKind::{HexOrBit, Number, QuotedIdent, Symbol, SysVar, UserVar, Word};
    const STR: TokenKind = TokenKind::String;

    #[test]
    fn words_numbers_symbols() {
        assert_eq!(
            texts("SELECT a,b FROM t WHERE x<=>1.5e3;"),
            ["SELECT", "a", ",", "b", "FROM", "t", "WHERE", "x", "<=>", "1.5e3", ";"]
        );
        assert_eq!(
            kinds("1 1.5 123abc 0x1F 0b101 X'ff' b'01' 0xZZ"),
            [Number, Number, Word, HexOrBit, HexOrBit, HexOrBit, HexOrBit, Word]
        );
        assert_eq!(texts("a:=b->>'$.x'"), ["a", ":=", "b", "->>", "'$.x'"]);
    }

    #[test]
    fn strings_and_escapes() {
        assert_eq!(
            texts(r#"'it''s' "a\"b" 'x\'y' N'z'"#),
            ["'it''s'", r#""a\"b""#, r"'x\'y'", "N'z'"]
        );
        assert_eq!(kinds("'a' `b``c` N'x'"), [STR, QuotedIdent, STR]);
        assert_eq!(texts("`a``b` c"), ["`a``b`", "c"]);
    }

    #[test]
    fn no_backslash_escapes_mode() {
        let sql = br"SELECT 'a\'; UPDATE t SET x = 1; -- '";
        let mode = SqlMode {
            no_backslash_escapes: true,
            ..SqlMode::default()
        };
        assert_eq!(Lexer::new(sql).count(), 2);
        assert_eq!(Lexer::with_mode(sql, mode).count(), 10);
        assert_eq!(Lexer::with_mode(b"'it''s'", mode).count(), 1);
    }

    #[test]
    fn variables() {
        assert_eq!(
            kinds("@a @'b c' @`d` @@x @@global.y @@session.`z`"),
            [UserVar, UserVar, UserVar, SysVar, SysVar, SysVar]
        );
        assert_eq!(
            texts("@@global.max_connections+1"),
            ["@@global.max_connections", "+", "1"]
        );
        // user@host is not a variable.
        assert_eq!(kinds("'u'@'h'"), [STR, Symbol, STR]);
        assert_eq!(kinds("`u`@`h`"), [QuotedIdent, Symbol, QuotedIdent]);
        assert_eq!(kinds("SET@a=1"), [Word, UserVar, Symbol, Number]);
    }

    #[test]
    fn comments() {
        assert_eq!(
            texts("SELECT -- c\n 1 # x\n /* y */ + 2"),
            ["SELECT", "1", "+", "2"]
        );
        assert_eq!(texts("SELECT 1--1"), ["SELECT", "1", "-", "-", "1"]);
        assert_eq!(
            texts("SELECT /*+ MAX_EXECUTION_TIME(1) */ 1"),
            ["SELECT", "1"]
        );
        assert_eq!(
            texts("/*!40101 SET NAMES utf8 */;"),
            ["SET", "NAMES", "utf8", ";"]
        );
        assert_eq!(
            texts("/*M!100108 SET STATEMENT x=1 FOR*/ SELECT 1"),
            ["SET", "STATEMENT", "x", "=", "1", "FOR", "SELECT", "1"]
        );
        assert_eq!(texts("/*! STRAIGHT_JOIN */ a"), ["STRAIGHT_JOIN", "a"]);
        assert_eq!(texts("SELECT 2*3"), ["SELECT", "2", "*", "3"]);
    }

    #[test]
    fn unterminated_inputs_end_quietly() {
        for s in [
            "'abc", "\"abc\\", "`abc", "/* abc", "/*!", "/*M!1", "@'x", "@@", "@", "0x", "--",
            "x'", "1e", "1e+",
        ] {
            let _ = toks(s);
        }
        assert_eq!(texts("SELECT 'abc"), ["SELECT", "'abc"]);
    }

    #[test]
    fn non_utf8_and_all_short_byte_strings_do_not_panic() {
        let _ = Lexer::new(b"SELECT '\xff\xfe' FROM \xe9t\xe9").count();
        let alphabet: &[u8] = b"'\"`\\@/*!M-#x0.e;?:<>+ a1\n\xff";
        let mut buf = Vec::new();
        for a in alphabet {
            for b in alphabet {
                for c in alphabet {
                    buf.clear();
                    buf.extend_from_slice(&[*a, *b, *c]);
                    for t in Lexer::new(&buf) {
                        assert!(!t.text.is_empty());
                    }
                }
            }
        }
    }

    #[test]
    fn swar_scan_matches_a_plain_scan() {
        let plain = |h: &[u8], q: u8, e: bool| h.iter().position(|&c| c == q || e && c == b'\\');
        let alphabet = [b'a', b'\'', b'"', b'\\', b'`', 0x80, 0xff, 0x27 ^ 0x80];
        let mut x: u32 = 12345;
        for len in 0..40 {
            for _ in 0..200 {
                let h: Vec<u8> = (0..len)
                    .map(|_| {
                        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                        alphabet[(x >> 16) as usize % alphabet.len()]
                    })
                    .collect();
                for (q, e) in [(b'\'', true), (b'"', true), (b'`', false)] {
                    assert_eq!(next_special(&h, q, e), plain(&h, q, e), "{h:?}");
                }
            }
        }
    }

    #[test]
    fn inner_strips_quotes() {
        let t: Vec<_> = Lexer::new(b"'a' `b` @'c' @@d N'e' @f 'g").collect();
        let inner: Vec<_> = t.iter().map(|t| t.inner()).collect();
        assert_eq!(inner, [&b"a"[..], b"b", b"c", b"d", b"e", b"f", b"g"]);
    }
}
