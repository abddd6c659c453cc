//! Prepared statements of one session: the id the client sees, mapped to the id each backend
//! gave the statement. Backends that do not have a statement yet are given it when an execute
//! is sent there, so statements follow the session wherever the router sends it.

use std::collections::HashMap;

use bytes::Bytes;
use switchyard_api::{ServerName, StmtId};
use switchyard_sql::kill::Kill;

/// A statement's id on one backend (the client knows it by its [`StmtId`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackendStmtId(pub u32);

/// A statement as one backend knows it.
#[derive(Debug, Clone)]
pub struct OnBackend {
    pub server: ServerName,
    pub id: BackendStmtId,
    /// The backend has seen the parameter types the client sent last, so an execute without
    /// types means the same there.
    pub types_sent: bool,
}

/// One prepared statement.
#[derive(Debug)]
pub struct Statement {
    /// The COM_STMT_PREPARE payload, to prepare it on another backend.
    pub prepare: Bytes,
    pub params: u16,
    /// The parameter types of the client's last execute that carried them.
    pub types: Option<Bytes>,
    pub backends: Vec<OnBackend>,
    /// Where it last ran: COM_STMT_FETCH reads the cursor there.
    pub last_server: Option<ServerName>,
    /// Long data was sent to this backend since the last execute: only it can run it.
    pub long_data: Option<ServerName>,
    /// Its results may hold connection ids to rewrite.
    pub reads_thread_ids: bool,
    /// A KILL, which the proxy runs itself at each execute; then no backend has it.
    pub kill: Option<Kill>,
}

impl Statement {
    pub fn on(&self, server: &ServerName) -> Option<&OnBackend> {
        self.backends.iter().find(|b| &b.server == server)
    }

    pub fn on_mut(&mut self, server: &ServerName) -> Option<&mut OnBackend> {
        self.backends.iter_mut().find(|b| &b.server == server)
    }
    /// The statement as a COM_QUERY payload: its text, run as a text query.
    pub fn text_query(&self) -> Bytes {
        let mut query = Vec::with_capacity(self.prepare.len());
        query.push(switchyard_protocol::command::COM_QUERY);
        query.extend_from_slice(&self.prepare[1..]);
        query.into()
    }
}

/// The session's statements by client-visible id.
#[derive(Debug, Default)]
pub struct Prepared {
    last_id: u32,
    statements: HashMap<StmtId, Statement>,
}

use switchyard_protocol::stmt::LAST_PREPARED_STMT_ID as LAST_PREPARED;

impl Prepared {
    /// Registers a statement being prepared (whose results may show connection ids, with
    /// `reads_thread_ids`); returns its client-visible id.
    pub fn add(&mut self, prepare: Bytes, reads_thread_ids: bool) -> StmtId {
        loop {
            self.last_id = self.last_id.wrapping_add(1);
            if self.last_id != 0
                && self.last_id != LAST_PREPARED
                && !self.statements.contains_key(&StmtId(self.last_id))
            {
                break;
            }
        }
        self.statements.insert(
            StmtId(self.last_id),
            Statement {
                reads_thread_ids,
                kill: None,
                prepare,
                params: 0,
                types: None,
                backends: Vec::new(),
                last_server: None,
                long_data: None,
            },
        );
        StmtId(self.last_id)
    }

    /// Resolves the id a client command carries (`LAST_PREPARED` included) to a known
    /// statement.
    pub fn resolve(&self, client_id: u32) -> Option<StmtId> {
        let id = self.named(client_id);
        self.statements.contains_key(&id).then_some(id)
    }

    /// The statement the client's id names (`LAST_PREPARED` included), in one lookup.
    pub fn find(&self, client_id: u32) -> Option<&Statement> {
        self.statements.get(&self.named(client_id))
    }

    /// The id `client_id` stands for: itself, or the last prepared for `LAST_PREPARED`.
    fn named(&self, client_id: u32) -> StmtId {
        if client_id == LAST_PREPARED {
            StmtId(self.last_id)
        } else {
            StmtId(client_id)
        }
    }

    pub fn get(&self, id: StmtId) -> Option<&Statement> {
        self.statements.get(&id)
    }

    pub fn get_mut(&mut self, id: StmtId) -> Option<&mut Statement> {
        self.statements.get_mut(&id)
    }

    pub fn remove(&mut self, id: StmtId) -> Option<Statement> {
        self.statements.remove(&id)
    }

    /// Records that `server` knows statement `id` as `backend_id`.
    pub fn set_backend(&mut self, id: StmtId, server: &ServerName, backend_id: BackendStmtId) {
        if let Some(s) = self.statements.get_mut(&id) {
            s.backends.retain(|b| &b.server != server);
            s.backends.push(OnBackend {
                server: server.clone(),
                id: backend_id,
                types_sent: false,
            });
        }
    }

    /// A backend was closed: its statement ids are gone with it.
    pub fn forget_server(&mut self, server: &ServerName) {
        for s in self.statements.values_mut() {
            s.backends.retain(|b| &b.server != server);
            if s.last_server.as_ref() == Some(server) {
                s.last_server = None;
            }
            if s.long_data.as_ref() == Some(server) {
                s.long_data = None;
            }
        }
    }

    pub fn clear(&mut self) {
        self.statements.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_the_proxys_and_map_per_backend() {
        let mut p = Prepared::default();
        let a = p.add(Bytes::from_static(b"\x16SELECT 1"), false);
        let b = p.add(Bytes::from_static(b"\x16SELECT 2"), false);
        assert_eq!((a, b), (StmtId(1), StmtId(2)));
        let (db1, db2) = (ServerName::new("db1"), ServerName::new("db2"));
        p.set_backend(a, &db1, BackendStmtId(7));
        p.set_backend(a, &db2, BackendStmtId(3));
        assert_eq!(p.get(a).unwrap().on(&db2).unwrap().id, BackendStmtId(3));
        assert_eq!(p.resolve(LAST_PREPARED), Some(b));
        p.forget_server(&db2);
        assert!(p.get(a).unwrap().on(&db2).is_none());
        assert!(p.remove(a).is_some());
        assert_eq!(p.resolve(a.0), None);
    }
}
