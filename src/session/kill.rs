//! `KILL [HARD|SOFT] [CONNECTION|QUERY] <id>`: recognised so that the connection ids clients
//! see (the proxy's own) can be translated to the backends' thread ids.

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

/// Parses a KILL statement; `None` for anything else, including `KILL QUERY ID <query id>` and
/// `KILL USER`, which go to the server as they are.
pub fn parse(sql: &[u8]) -> Option<Kill> {
    let mut words = Words { s: sql };
    if !words.next()?.eq_ignore_ascii_case(b"KILL") {
        return None;
    }
    let mut word = words.next()?;
    if word.eq_ignore_ascii_case(b"HARD") || word.eq_ignore_ascii_case(b"SOFT") {
        word = words.next()?;
    }
    let mut query_only = false;
    if word.eq_ignore_ascii_case(b"CONNECTION") {
        word = words.next()?;
    } else if word.eq_ignore_ascii_case(b"QUERY") {
        query_only = true;
        word = words.next()?;
    }
    let id = std::str::from_utf8(word).ok()?.parse().ok()?;
    match words.next() {
        None => Some(Kill { query_only, id }),
        Some(b";") if words.next().is_none() => Some(Kill { query_only, id }),
        _ => None,
    }
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
    fn kill_forms() {
        assert_eq!(
            parse(b"KILL 12"),
            Some(Kill {
                query_only: false,
                id: 12
            })
        );
        assert_eq!(
            parse(b"kill query 7;"),
            Some(Kill {
                query_only: true,
                id: 7
            })
        );
        assert_eq!(
            parse(b"  KILL HARD CONNECTION\n 3 "),
            Some(Kill {
                query_only: false,
                id: 3
            })
        );
        assert_eq!(
            parse(b"/* c */ KILL SOFT QUERY 9"),
            Some(Kill {
                query_only: true,
                id: 9
            })
        );
        assert_eq!(
            parse(b"KILL QUERY 9 -- why\n"),
            Some(Kill {
                query_only: true,
                id: 9
            })
        );
    }

    #[test]
    fn not_translated() {
        assert_eq!(parse(b"KILL QUERY ID 5"), None);
        assert_eq!(parse(b"KILL USER app"), None);
        assert_eq!(parse(b"SELECT 1"), None);
        assert_eq!(parse(b"KILL 5; DROP TABLE t"), None);
        assert_eq!(parse(b"KILL /*!50000 QUERY */ 5"), None);
        assert_eq!(parse(b"KILL"), None);
        assert_eq!(parse(b"KILL 99999999999999999999999"), None);
        assert_eq!(parse(b"KILL /* unterminated"), None);
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
