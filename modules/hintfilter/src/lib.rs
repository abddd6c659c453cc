//! `hintfilter`: routing hints in SQL comments, in the syntax of MaxScale's filter of the same
//! name (see [`syntax`](crate::syntax) for the grammar), attached to each statement for the
//! router to obey:
//!
//! ```sql
//! SELECT * FROM orders -- maxscale route to master
//! SELECT * FROM stats /* maxscale route to server db3 */
//! SELECT * FROM feed /* maxscale max_slave_replication_lag=5 */
//! ```
//!
//! Besides one-statement hints, a session keeps named hints and a stack of active hints
//! (`NAME prepare`, `NAME begin`, `begin`, `end`): a statement without its own hint gets the
//! one on top of the stack. A hint in the text of a binary-protocol prepared statement applies
//! to each of its executions (the preparation itself goes to every server, as always).
//!
//! `readwritesplit` obeys the hints outside transactions and for statements that are not
//! session commands; routers that keep one server per connection ignore them. The first
//! comment that starts with `maxscale` counts; a hint that makes no sense is ignored and
//! counted (`ignored` in the admin API).

#![forbid(unsafe_code)]

mod syntax;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::Deserialize;
use switchyard_api::{
    ClientInfo, Filter, FilterModule, FilterSession, ReplyInfo, RouteHint, ServerName, Statement,
    StmtId, Verdict,
};
use switchyard_protocol::Command;
use switchyard_sql::{contains_ignore_case, find_comment, may_have_comment, SqlMode};

use syntax::{Directive, Target, TAG};

/// How many named hints, and how deep a stack, one session may have: a client cannot make the
/// proxy hold more. Hints beyond them are ignored and counted.
const MAX_NAMED: usize = 256;
const MAX_DEPTH: usize = 256;

/// `hintfilter` has no options (as in MaxScale); the struct rejects any that are given.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HintFilterConfig {}

/// One configured `hintfilter`, shared by the services that list it.
#[derive(Default)]
pub struct HintFilter {
    counters: Arc<Counters>,
}

#[derive(Default)]
struct Counters {
    /// Commands a hint was attached to.
    hinted: AtomicU64,
    /// `maxscale` comments that made no sense, or went past a session's limits.
    ignored: AtomicU64,
}

impl HintFilter {
    pub fn new(_config: HintFilterConfig) -> Self {
        HintFilter::default()
    }
}

impl FilterModule for HintFilter {
    const NAME: &'static str = "hintfilter";
    type Config = HintFilterConfig;

    fn build(_name: &str, config: HintFilterConfig) -> Result<Arc<dyn Filter>, String> {
        Ok(Arc::new(HintFilter::new(config)))
    }
}

impl Filter for HintFilter {
    fn new_session(&self, _client: &ClientInfo) -> Box<dyn FilterSession> {
        Box::new(HintSession::new(self.counters.clone()))
    }

    fn diagnostics(&self) -> serde_json::Value {
        let c = &self.counters;
        serde_json::json!({
            "hinted": c.hinted.load(Ordering::Relaxed),
            "ignored": c.ignored.load(Ordering::Relaxed),
        })
    }
}

/// A session's hints: the named ones, the stack, and those of its prepared statements.
struct HintSession {
    counters: Arc<Counters>,
    named: HashMap<String, Target>,
    stack: Vec<Target>,
    /// The hints of binary prepared statements, by the client's statement id.
    prepared: HashMap<StmtId, Target>,
    /// The hint of the COM_STMT_PREPARE in flight, kept once its id is known.
    preparing: Option<Target>,
    /// The server whose reply the client got last, for `route to last`.
    last: Option<ServerName>,
}

impl HintSession {
    fn new(counters: Arc<Counters>) -> Self {
        HintSession {
            counters,
            named: HashMap::new(),
            stack: Vec::new(),
            prepared: HashMap::new(),
            preparing: None,
            last: None,
        }
    }

    /// The hint for a statement text read in `mode` (it decides where a string ends, and so
    /// which text is a comment): its own, else the one on top of the stack.
    fn read(&mut self, sql: &[u8], mode: SqlMode) -> Option<Target> {
        let own = if may_have_comment(sql) && contains_ignore_case(sql, TAG) {
            match find_comment(sql, mode, syntax::parse) {
                Some(Ok(directive)) => self.apply(directive),
                Some(Err(())) => self.ignore(),
                None => None,
            }
        } else {
            None
        };
        own.or_else(|| self.stack.last().cloned())
    }

    /// Carries out a directive; returns the hint of a one-statement directive.
    fn apply(&mut self, directive: Directive) -> Option<Target> {
        let pushed = match directive {
            Directive::Once(target) => return Some(target),
            Directive::Define { name, target } => {
                self.define(name, target);
                return None;
            }
            Directive::PushNamed {
                name,
                target: Some(target),
            } => {
                self.define(name, target.clone());
                target
            }
            Directive::PushNamed { name, target: None } => match self.named.get(&name) {
                Some(target) => target.clone(),
                None => return self.ignore(),
            },
            Directive::PushAnonymous(target) => target,
            Directive::Pop => {
                self.stack.pop();
                return None;
            }
        };
        if self.stack.len() < MAX_DEPTH {
            self.stack.push(pushed);
        } else {
            self.ignore();
        }
        None
    }

    fn define(&mut self, name: String, target: Target) {
        if self.named.len() < MAX_NAMED || self.named.contains_key(&name) {
            self.named.insert(name, target);
        } else {
            self.ignore();
        }
    }

    fn ignore(&self) -> Option<Target> {
        self.counters.ignored.fetch_add(1, Ordering::Relaxed);
        None
    }

    /// The hint the router gets; `route to last` needs a previous statement.
    fn resolve(&self, target: Target) -> Option<RouteHint> {
        Some(match target {
            Target::Primary => RouteHint::Primary,
            Target::Replica => RouteHint::Replica,
            Target::Server(name) => RouteHint::Server(name),
            Target::Last => RouteHint::Server(self.last.clone()?),
            Target::MaxLag(limit) => RouteHint::MaxReplicationLag(limit),
        })
    }
}

impl FilterSession for HintSession {
    fn on_command(&mut self, stmt: &mut Statement<'_>) -> Verdict {
        self.preparing = None;
        let mode = stmt.sql_mode();
        let target = match *stmt.command() {
            Command::Query(sql) => self.read(sql, mode),
            Command::StmtPrepare(sql) => {
                // Applies to the executions; the preparation goes everywhere.
                self.preparing = self.read(sql, mode);
                None
            }
            Command::StmtExecute { stmt_id, .. } => self
                .prepared
                .get(&StmtId(stmt_id))
                .or(self.stack.last())
                .cloned(),
            Command::StmtClose { stmt_id } => {
                self.prepared.remove(&StmtId(stmt_id));
                None
            }
            Command::ResetConnection => {
                // As for a new session: the server forgot the prepared statements too.
                self.prepared.clear();
                self.named.clear();
                self.stack.clear();
                None
            }
            _ => None,
        };
        match target.and_then(|t| self.resolve(t)) {
            Some(hint) => {
                self.counters.hinted.fetch_add(1, Ordering::Relaxed);
                Verdict::Hint(hint)
            }
            None => Verdict::Pass,
        }
    }

    fn on_reply(&mut self, reply: &ReplyInfo<'_>) {
        let ok = reply.summary.error.is_none();
        if let Some(server) = reply.server {
            if self.last.as_ref() != Some(&server.name) {
                self.last = Some(server.name.clone());
            }
        }
        if let (Some(target), Some(id), true) = (self.preparing.take(), reply.statement_id, ok) {
            self.prepared.insert(id, target);
        }
    }
}

#[cfg(test)]
mod tests;
