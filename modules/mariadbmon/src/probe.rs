//! One check of one server over the monitor's own connection: the server's variables and its
//! replication sources, as a raw [`Probe`]. Peer data is parsed leniently: a NULL, a missing
//! column or an unexpected value is "unknown" (`None`), never a panic.

use std::time::{Duration, Instant};

use switchyard_api::ReplicationSource;
use switchyard_protocol::conn::{connect_admin, LoginError, PacketIo};
use switchyard_protocol::text_query::{self, ResultSet};
use switchyard_protocol::ProtocolError;
use tokio::net::TcpStream;

/// The server's own variables, in this column order.
const SQL_VARS: &str =
    "SELECT @@server_id, @@read_only, @@gtid_current_pos, @@gtid_binlog_pos, @@version";
/// The same without the MariaDB GTID variables, for servers that lack them.
const SQL_VARS_BASIC: &str = "SELECT @@server_id, @@read_only, @@version";
/// Replication sources, tried in order while the server answers with a syntax error:
/// MariaDB (every source), MySQL 8.0.22+, older MySQL.
const SQL_SOURCES: [&str; 3] = [
    "SHOW ALL SLAVES STATUS",
    "SHOW REPLICA STATUS",
    "SHOW SLAVE STATUS",
];

/// `ER_PARSE_ERROR`: the statement is not known to this server.
const ER_PARSE_ERROR: u16 = 1064;
/// Server errors after which the connection is gone: shutdown in progress, connection killed,
/// idle connection closed (MySQL 8).
const FATAL_SERVER_ERRORS: [u16; 3] = [1053, 1927, 4031];

/// Why a check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    /// No TCP connection (refused, unreachable, unknown host).
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The server refused the monitor's login.
    #[error("login refused: {0}")]
    Login(String),
    /// The server did not answer in time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The connection broke during the check.
    #[error("connection lost: {0}")]
    Lost(String),
    /// The server answered something this monitor does not understand.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The server refused the monitor's basic query.
    #[error("query refused: {0}")]
    Query(String),
}

impl CheckError {
    /// A bounded label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            CheckError::Connect(_) => "connect",
            CheckError::Login(_) => "login",
            CheckError::Timeout(_) => "timeout",
            CheckError::Lost(_) => "lost",
            CheckError::Protocol(_) => "protocol",
            CheckError::Query(_) => "query",
        }
    }
}

/// One row of `SHOW ALL SLAVES STATUS`, as the monitor reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceStatus {
    /// The row as the module contract shows it.
    pub source: ReplicationSource,
    /// `Slave_IO_Running` as the server wrote it (`Yes`, `No`, `Connecting`); empty if unknown.
    pub io_state: String,
    /// `Slave_SQL_Running` as the server wrote it; empty if unknown.
    pub sql_state: String,
    /// `Master_Server_Id`: the source's `server_id`, when the IO thread has met it.
    pub master_server_id: Option<u32>,
    /// `Gtid_IO_Pos`: the last GTID the IO thread received.
    pub gtid_io_pos: Option<String>,
    /// `Using_Gtid`: `No`, `Slave_Pos` or `Current_Pos`.
    pub using_gtid: Option<String>,
}

impl SourceStatus {
    /// Both threads running and no error: the replica follows its source.
    pub fn is_healthy(&self) -> bool {
        self.source.io_running && self.source.sql_running && self.source.last_error.is_none()
    }

    /// Why this replication is broken, in the server's own words.
    pub fn describe_broken(&self) -> String {
        let state = |s: &str| {
            if s.is_empty() {
                "unknown".to_string()
            } else {
                s.to_string()
            }
        };
        let mut text = String::new();
        if !self.source.connection_name.is_empty() {
            text.push_str(&format!("connection '{}': ", self.source.connection_name));
        }
        text.push_str(&format!(
            "Slave_IO_Running={}, Slave_SQL_Running={}",
            state(&self.io_state),
            state(&self.sql_state)
        ));
        if let Some(e) = &self.source.last_error {
            text.push_str(", error: ");
            text.push_str(e);
        }
        text
    }
}

/// What one successful check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// `@@server_id`; `None` when NULL or not a number.
    pub server_id: Option<u32>,
    /// `@@read_only`; `None` when the server's answer was not a boolean.
    pub read_only: Option<bool>,
    /// `@@version`, else the version of the login handshake.
    pub version: Option<String>,
    /// `@@gtid_current_pos`; `None` on servers without MariaDB GTIDs.
    pub gtid_current_pos: Option<String>,
    /// `@@gtid_binlog_pos`; `None` on servers without MariaDB GTIDs.
    pub gtid_binlog_pos: Option<String>,
    /// The replication sources; `Err` with the server's answer when it would not show them
    /// (missing privilege): replication is then unknown.
    pub sources: Result<Vec<SourceStatus>, String>,
    /// Time the check's queries took.
    pub rtt: Duration,
}

/// The outcome of [`Prober::check`].
#[derive(Debug)]
pub(crate) struct Checked {
    pub result: Result<Probe, CheckError>,
    /// Set when the monitor's previous connection was found broken (killed, server restarted)
    /// and the check opened a new one; the reason it broke.
    pub lost: Option<String>,
}

/// The monitor's persistent connection to one server, and how to open it.
pub(crate) struct Prober {
    address: String,
    user: String,
    password: String,
    connect_timeout: Duration,
    read_timeout: Duration,
    conn: Option<Conn>,
}

struct Conn {
    io: PacketIo<TcpStream>,
    capabilities: u32,
    connection_id: u32,
    version: String,
}

impl Prober {
    pub(crate) fn new(
        address: String,
        user: String,
        password: String,
        connect_timeout: Duration,
        read_timeout: Duration,
    ) -> Self {
        Prober {
            address,
            user,
            password,
            connect_timeout,
            read_timeout,
            conn: None,
        }
    }

    /// The server's id for the monitor's open connection (as in `SHOW PROCESSLIST`).
    pub(crate) fn connection_id(&self) -> Option<u32> {
        self.conn.as_ref().map(|c| c.connection_id)
    }

    /// Checks the server once, within `connect_timeout + read_timeout`. A connection found
    /// broken is replaced once within the same check; after any failure the connection is
    /// dropped, as its state is unknown.
    pub(crate) async fn check(&mut self) -> Checked {
        let deadline = self.connect_timeout + self.read_timeout;
        let mut lost = None;
        let result = match tokio::time::timeout(deadline, self.check_inner(&mut lost)).await {
            Ok(r) => r,
            Err(_) => Err(CheckError::Timeout(format!(
                "the check took longer than {}",
                humantime::format_duration(deadline)
            ))),
        };
        if result.is_err() {
            self.conn = None;
        }
        Checked { result, lost }
    }

    /// [`check`](Self::check) for a future that owns the prober.
    pub(crate) async fn check_owned(mut self: Box<Self>) -> (Box<Prober>, Checked) {
        let checked = self.check().await;
        (self, checked)
    }

    async fn check_inner(&mut self, lost: &mut Option<String>) -> Result<Probe, CheckError> {
        let read_timeout = self.read_timeout;
        if let Some(conn) = self.conn.as_mut() {
            match run_checks(conn, read_timeout).await {
                Ok(p) => return Ok(p),
                // Killed by an operator, or the server restarted: try a new connection now
                // rather than count a failure.
                Err(CheckError::Lost(reason)) => {
                    self.conn = None;
                    *lost = Some(reason);
                }
                Err(e) => {
                    self.conn = None;
                    return Err(e);
                }
            }
        }
        let conn = self.connect().await?;
        let conn = self.conn.insert(conn);
        run_checks(conn, read_timeout).await
    }

    async fn connect(&self) -> Result<Conn, CheckError> {
        match connect_admin(
            &self.address,
            &self.user,
            &self.password,
            self.connect_timeout,
        )
        .await
        {
            Ok((io, info)) => Ok(Conn {
                io,
                capabilities: info.capabilities,
                connection_id: info.connection_id,
                version: String::from_utf8_lossy(&info.server_version).into_owned(),
            }),
            Err(e) => Err(login_error(e, self.connect_timeout)),
        }
    }
}

fn login_error(e: LoginError, timeout: Duration) -> CheckError {
    match e {
        LoginError::Rejected(_) => CheckError::Login(e.to_string()),
        LoginError::Protocol(ProtocolError::Timeout(_)) => CheckError::Timeout(format!(
            "no connection and login within {} (connect_timeout)",
            humantime::format_duration(timeout)
        )),
        LoginError::Protocol(ProtocolError::Io(io)) => CheckError::Connect(describe_io(&io)),
        LoginError::Protocol(ProtocolError::Closed) => {
            CheckError::Connect("connection closed by the server during login".to_string())
        }
        LoginError::Protocol(other) => CheckError::Protocol(other.to_string()),
    }
}

fn describe_io(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused => "connection refused".to_string(),
        ConnectionReset => "connection reset".to_string(),
        ConnectionAborted => "connection aborted".to_string(),
        BrokenPipe => "broken pipe".to_string(),
        UnexpectedEof => "connection closed by the server".to_string(),
        _ => e.to_string(),
    }
}

/// A query's failure, sorted: the connection is gone, the server said no, or something else.
enum QueryFailure {
    Server { code: u16, message: String },
    Fatal(CheckError),
}

fn classify(e: ProtocolError) -> QueryFailure {
    match e {
        ProtocolError::Server { code, .. } if FATAL_SERVER_ERRORS.contains(&code) => {
            QueryFailure::Fatal(CheckError::Lost(e.to_string()))
        }
        ProtocolError::Server { code, .. } => QueryFailure::Server {
            code,
            message: e.to_string(),
        },
        ProtocolError::Io(io) => QueryFailure::Fatal(CheckError::Lost(describe_io(&io))),
        ProtocolError::Closed => QueryFailure::Fatal(CheckError::Lost(
            "connection closed by the server".to_string(),
        )),
        ProtocolError::Timeout(what) => QueryFailure::Fatal(CheckError::Timeout(what.to_string())),
        other => QueryFailure::Fatal(CheckError::Protocol(other.to_string())),
    }
}

async fn timed_query(
    conn: &mut Conn,
    read_timeout: Duration,
    sql: &str,
) -> Result<ResultSet, QueryFailure> {
    match tokio::time::timeout(
        read_timeout,
        text_query::query(&mut conn.io, conn.capabilities, sql),
    )
    .await
    {
        Ok(Ok(set)) => Ok(set),
        Ok(Err(e)) => Err(classify(e)),
        Err(_) => Err(QueryFailure::Fatal(CheckError::Timeout(format!(
            "no answer to `{sql}` within {} (read_timeout)",
            humantime::format_duration(read_timeout)
        )))),
    }
}

/// Runs the check's queries on an open connection.
async fn run_checks(conn: &mut Conn, read_timeout: Duration) -> Result<Probe, CheckError> {
    let started = Instant::now();
    let mut probe = match timed_query(conn, read_timeout, SQL_VARS).await {
        Ok(set) => parse_vars(&set, true),
        // A server without the MariaDB GTID variables: ask for the rest.
        Err(QueryFailure::Server { .. }) => match timed_query(conn, read_timeout, SQL_VARS_BASIC)
            .await
        {
            Ok(set) => parse_vars(&set, false),
            Err(QueryFailure::Server { message, .. }) => return Err(CheckError::Query(message)),
            Err(QueryFailure::Fatal(e)) => return Err(e),
        },
        Err(QueryFailure::Fatal(e)) => return Err(e),
    };
    if probe.version.is_none() && !conn.version.is_empty() {
        probe.version = Some(conn.version.clone());
    }
    probe.sources = Err("not read".to_string());
    for sql in SQL_SOURCES {
        match timed_query(conn, read_timeout, sql).await {
            Ok(set) => {
                probe.sources = Ok(parse_sources(&set));
                break;
            }
            Err(QueryFailure::Server { code, message }) => {
                probe.sources = Err(message);
                if code != ER_PARSE_ERROR {
                    break;
                }
            }
            Err(QueryFailure::Fatal(e)) => return Err(e),
        }
    }
    probe.rtt = started.elapsed();
    Ok(probe)
}

/// Reads the answer to `SELECT @@server_id, @@read_only, @@gtid_current_pos,
/// @@gtid_binlog_pos, @@version` (`full`) or to `SELECT @@server_id, @@read_only, @@version`.
/// `sources` and `rtt` are left for the caller.
pub fn parse_vars(set: &ResultSet, full: bool) -> Probe {
    let row = set.rows.first();
    let text = |i: usize| -> Option<String> {
        let v = row?.get(i)?.as_ref()?;
        Some(String::from_utf8_lossy(v).trim().to_string())
    };
    let (current, binlog, version) = if full {
        (text(2), text(3), text(4))
    } else {
        (None, None, text(2))
    };
    Probe {
        server_id: text(0).and_then(|s| s.parse().ok()),
        read_only: text(1).and_then(|s| parse_bool(&s)),
        version: version.filter(|v| !v.is_empty()),
        gtid_current_pos: current,
        gtid_binlog_pos: binlog,
        sources: Ok(Vec::new()),
        rtt: Duration::ZERO,
    }
}

/// A boolean variable as the server shows it: `1`/`0`, `ON`/`OFF`, `true`/`false`.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "on" | "true" | "yes" => Some(true),
        "0" | "off" | "false" | "no" => Some(false),
        _ => None,
    }
}

/// Reads `SHOW ALL SLAVES STATUS` (or MySQL's `SHOW REPLICA STATUS`): one entry per row.
pub fn parse_sources(set: &ResultSet) -> Vec<SourceStatus> {
    set.rows
        .iter()
        .map(|row| {
            let get = |names: &[&str]| set.text(row, names);
            let nonempty = |names: &[&str]| get(names).filter(|s| !s.trim().is_empty());
            let io_state = get(&["Slave_IO_Running", "Replica_IO_Running"]).unwrap_or_default();
            let sql_state = get(&["Slave_SQL_Running", "Replica_SQL_Running"]).unwrap_or_default();
            let last_error = match (nonempty(&["Last_IO_Error"]), nonempty(&["Last_SQL_Error"])) {
                (Some(io), Some(sql)) => Some(format!("{io}; {sql}")),
                (io, sql) => io.or(sql),
            };
            SourceStatus {
                source: ReplicationSource {
                    connection_name: get(&["Connection_name", "Channel_Name"]).unwrap_or_default(),
                    source_host: get(&["Master_Host", "Source_Host"]).unwrap_or_default(),
                    source_port: get(&["Master_Port", "Source_Port"])
                        .and_then(|p| p.trim().parse().ok())
                        .unwrap_or(0),
                    io_running: io_state.eq_ignore_ascii_case("yes"),
                    sql_running: sql_state.eq_ignore_ascii_case("yes"),
                    seconds_behind: get(&["Seconds_Behind_Master", "Seconds_Behind_Source"])
                        .and_then(|s| s.trim().parse().ok()),
                    last_error,
                },
                io_state,
                sql_state,
                master_server_id: get(&["Master_Server_Id", "Source_Server_Id"])
                    .and_then(|s| s.trim().parse().ok())
                    .filter(|&id: &u32| id != 0),
                gtid_io_pos: get(&["Gtid_IO_Pos"]),
                using_gtid: get(&["Using_Gtid"]),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
