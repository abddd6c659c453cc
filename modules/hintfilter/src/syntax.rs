//! The hint syntax of MaxScale's `hintfilter`, read from one comment's body:
//!
//! ```text
//! maxscale route to master | slave | server NAME | last      a hint for this statement
//! maxscale max_slave_replication_lag=SECONDS                 a hint for this statement
//! maxscale NAME prepare HINT                                 defines a named hint
//! maxscale NAME begin [HINT]                                 pushes a named hint (defining it)
//! maxscale begin HINT                                        pushes an anonymous hint
//! maxscale end                                               pops the hint on top
//! ```
//!
//! Keywords ignore case; `primary` and `replica` are accepted for `master` and `slave`, and
//! `max_replication_lag` for `max_slave_replication_lag`, whose value may also be a duration
//! like `500ms`. Server and hint names are taken as written.

use std::time::Duration;

use switchyard_api::ServerName;

/// What a hint asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    Primary,
    Replica,
    Server(ServerName),
    /// The server that answered the previous statement.
    Last,
    /// Replicas qualify only within this lag.
    MaxLag(Duration),
}

/// What one `maxscale` comment says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Directive {
    /// A hint for this statement only.
    Once(Target),
    /// `NAME prepare HINT`.
    Define { name: String, target: Target },
    /// `NAME begin [HINT]`: `target` is `None` when a hint defined before is pushed.
    PushNamed {
        name: String,
        target: Option<Target>,
    },
    /// `begin HINT`.
    PushAnonymous(Target),
    /// `end`.
    Pop,
}

/// The tag every hint starts with.
pub(crate) const TAG: &[u8] = b"maxscale";

/// Reads a comment's body. `None` if it is not a hint comment (no `maxscale` tag first);
/// `Some(Err(()))` if it is one that makes no sense.
pub(crate) fn parse(body: &[u8]) -> Option<Result<Directive, ()>> {
    let body = body.trim_ascii_start();
    if body.len() < TAG.len() || !body[..TAG.len()].eq_ignore_ascii_case(TAG) {
        return None;
    }
    let rest = &body[TAG.len()..];
    // `maxscaled` is not the tag.
    if rest.first().is_some_and(|b| !b.is_ascii_whitespace()) {
        return None;
    }
    let words = words(rest);
    Some(directive(&words).ok_or(()))
}

fn directive(words: &[&[u8]]) -> Option<Directive> {
    let is = |i: usize, kw: &str| {
        words
            .get(i)
            .is_some_and(|w| w.eq_ignore_ascii_case(kw.as_bytes()))
    };
    if is(0, "end") {
        return (words.len() == 1).then_some(Directive::Pop);
    }
    if is(0, "begin") {
        return Some(Directive::PushAnonymous(target(&words[1..])?));
    }
    if let Some(target) = target(words) {
        return Some(Directive::Once(target));
    }
    let name = name(words.first()?)?;
    if is(1, "prepare") {
        let target = target(&words[2..])?;
        return Some(Directive::Define { name, target });
    }
    if is(1, "begin") {
        let target = match &words[2..] {
            [] => None,
            content => Some(target(content)?),
        };
        return Some(Directive::PushNamed { name, target });
    }
    None
}

fn target(words: &[&[u8]]) -> Option<Target> {
    let kw = |w: &[u8], any: &[&str]| any.iter().any(|k| w.eq_ignore_ascii_case(k.as_bytes()));
    match words {
        [route, to, rest @ ..] if kw(route, &["route"]) && kw(to, &["to"]) => match rest {
            [d] if kw(d, &["master", "primary"]) => Some(Target::Primary),
            [d] if kw(d, &["slave", "replica"]) => Some(Target::Replica),
            [d] if kw(d, &["last"]) => Some(Target::Last),
            [server, n] if kw(server, &["server"]) => {
                Some(Target::Server(ServerName::new(&name(n)?)))
            }
            _ => None,
        },
        [param, b"=", value]
            if kw(param, &["max_slave_replication_lag", "max_replication_lag"]) =>
        {
            lag(std::str::from_utf8(value).ok()?)
        }
        _ => None,
    }
}

/// Seconds, as MaxScale writes them, or a duration such as `500ms`.
fn lag(value: &str) -> Option<Target> {
    let lag = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => humantime::parse_duration(value).ok()?,
    };
    Some(Target::MaxLag(lag))
}

fn name(word: &[u8]) -> Option<String> {
    std::str::from_utf8(word).ok().map(str::to_string)
}

/// Splits on whitespace, with `=` a word of its own (`lag=5`, `lag = 5`).
fn words(text: &[u8]) -> Vec<&[u8]> {
    let mut words = Vec::new();
    for chunk in text.split(|b| b.is_ascii_whitespace()) {
        let mut rest = chunk;
        while let Some(i) = rest.iter().position(|&b| b == b'=') {
            words.push(&rest[..i]);
            words.push(&rest[i..=i]);
            rest = &rest[i + 1..];
        }
        words.push(rest);
    }
    words.retain(|w| !w.is_empty());
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(body: &str) -> Option<Result<Directive, ()>> {
        parse(body.as_bytes())
    }

    fn once(t: Target) -> Option<Result<Directive, ()>> {
        Some(Ok(Directive::Once(t)))
    }

    #[test]
    fn routes() {
        assert_eq!(p(" maxscale route to master "), once(Target::Primary));
        assert_eq!(p("MaxScale ROUTE TO Slave"), once(Target::Replica));
        assert_eq!(p("maxscale route to primary"), once(Target::Primary));
        assert_eq!(p("maxscale route to replica"), once(Target::Replica));
        assert_eq!(p("maxscale route to last"), once(Target::Last));
        assert_eq!(
            p("maxscale\troute to server DB2"),
            once(Target::Server(ServerName::new("DB2")))
        );
    }

    #[test]
    fn replication_lag() {
        let secs = |s| once(Target::MaxLag(Duration::from_secs(s)));
        assert_eq!(p("maxscale max_slave_replication_lag=5"), secs(5));
        assert_eq!(p("maxscale max_slave_replication_lag = 5"), secs(5));
        assert_eq!(p("maxscale max_replication_lag= 0"), secs(0));
        assert_eq!(
            p("maxscale max_replication_lag=500ms"),
            once(Target::MaxLag(Duration::from_millis(500)))
        );
    }

    #[test]
    fn named_and_stacked_hints() {
        assert_eq!(
            p("maxscale reports prepare route to slave"),
            Some(Ok(Directive::Define {
                name: "reports".into(),
                target: Target::Replica
            }))
        );
        assert_eq!(
            p("maxscale reports begin"),
            Some(Ok(Directive::PushNamed {
                name: "reports".into(),
                target: None
            }))
        );
        assert_eq!(
            p("maxscale writes begin route to master"),
            Some(Ok(Directive::PushNamed {
                name: "writes".into(),
                target: Some(Target::Primary)
            }))
        );
        assert_eq!(
            p("maxscale begin route to server db3"),
            Some(Ok(Directive::PushAnonymous(Target::Server(
                ServerName::new("db3")
            ))))
        );
        assert_eq!(p("maxscale END"), Some(Ok(Directive::Pop)));
    }

    #[test]
    fn not_hints_and_bad_hints() {
        assert_eq!(p("route to master"), None);
        assert_eq!(p("maxscaled route to master"), None);
        assert_eq!(p("app: maxscale route to master"), None);
        assert_eq!(p("maxscale"), Some(Err(())));
        assert_eq!(p("maxscale route to"), Some(Err(())));
        assert_eq!(p("maxscale route to server"), Some(Err(())));
        assert_eq!(p("maxscale route to nowhere"), Some(Err(())));
        assert_eq!(p("maxscale route to master now"), Some(Err(())));
        assert_eq!(p("maxscale begin"), Some(Err(())));
        assert_eq!(p("maxscale end now"), Some(Err(())));
        assert_eq!(p("maxscale x prepare"), Some(Err(())));
        assert_eq!(p("maxscale max_slave_replication_lag=soon"), Some(Err(())));
        assert_eq!(p("maxscale other_param=5"), Some(Err(())));
    }
}
