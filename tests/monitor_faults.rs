//! Faults on the real sandbox, seen through `mariadbmon` and the admin API: a stopped, killed
//! or restarted server, stopped replication, a lagging replica, killed monitor connections, a
//! port that accepts and never answers, operator flags, and readconnroute following the
//! monitor's roles rather than the config's.
//!
//! Every test drives the one shared sandbox, so they run one at a time (a global mutex), and
//! each puts the sandbox back the way it found it when it ends, pass or fail (a guard whose
//! `Drop` runs `scripts/sandbox.sh start dbN` and `START SLAVE`).
//!
//! Each measured transition is printed as `TRANSITION <server> <state> after <secs>s (...)`;
//! run with `--nocapture` to see them.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{Proxy, APP, HOST};
use mysql_async::prelude::*;
use mysql_async::Conn;
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// Monitor settings of every test config, and the time budgets derived from them.

const INTERVAL: Duration = Duration::from_millis(200);
const FAILCOUNT: u32 = 2;
const TIMEOUT: Duration = Duration::from_secs(1);
const SLACK: Duration = Duration::from_secs(1);

/// The brief's bound for a state change: `interval × failcount + timeout`, plus slack.
fn budget() -> Duration {
    INTERVAL * FAILCOUNT + TIMEOUT + SLACK
}

/// The bound for a server that hangs (every check waits out a timeout before it fails):
/// `failcount × (interval + timeout)`, plus slack.
fn hang_budget() -> Duration {
    (INTERVAL + TIMEOUT) * FAILCOUNT + SLACK
}

/// How long to wait for a state before failing (well above the budgets: the assertion on the
/// budget comes after, with the measured time in its message).
const WAIT: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------------------------
// One test at a time.

fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------------------------
// The sandbox: scripts/sandbox.sh and SQL as the admin over each instance's unix socket.

fn sandbox_dir() -> PathBuf {
    std::env::var_os("SANDBOX_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| common::repo().join(".sandbox"))
}

fn os_user() -> &'static str {
    static USER: OnceLock<String> = OnceLock::new();
    USER.get_or_init(|| {
        let out = Command::new("id").arg("-un").output().expect("run id -un");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    })
}

fn client_bin() -> &'static str {
    static BIN: OnceLock<String> = OnceLock::new();
    BIN.get_or_init(|| {
        for name in ["mariadb", "mysql"] {
            let found = Command::new("sh")
                .arg("-c")
                .arg(format!("command -v {name}"))
                .output()
                .is_ok_and(|o| o.status.success());
            if found {
                return name.to_string();
            }
        }
        panic!("neither the mariadb nor the mysql client is installed");
    })
}

/// Runs `sql` as the admin on sandbox instance `i` (1..=3); its tab-separated output.
fn root_sql(i: u32, sql: &str) -> Result<String, String> {
    let sock = sandbox_dir().join(format!("db{i}/mysqld.sock"));
    let out = Command::new(client_bin())
        .arg("--no-defaults")
        .arg(format!("--socket={}", sock.display()))
        .arg(format!("-u{}", os_user()))
        .args(["--connect-timeout=5", "-N", "-B", "-e", sql])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", client_bin()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "db{i}: `{sql}` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn root_sql_ok(i: u32, sql: &str) -> String {
    root_sql(i, sql).unwrap_or_else(|e| panic!("{e}"))
}

/// `scripts/sandbox.sh <cmd> db<i>`; panics with its output when it fails.
fn sandbox_cmd(cmd: &str, i: u32) -> Duration {
    let t0 = Instant::now();
    let out = Command::new("bash")
        .arg(common::repo().join("scripts/sandbox.sh"))
        .arg(cmd)
        .arg(format!("db{i}"))
        .current_dir(common::repo())
        .stdin(Stdio::null())
        .output()
        .expect("run scripts/sandbox.sh");
    if !out.status.success() {
        panic!(
            "scripts/sandbox.sh {cmd} db{i} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    t0.elapsed()
}

/// What to do to put the sandbox back.
enum Repair {
    /// `scripts/sandbox.sh start db<i>` (re-attaches and starts replication too).
    Start(u32),
    /// SQL as the admin on instance `i`.
    Sql(u32, String),
}

/// Puts the sandbox back when dropped, pass or fail, in the order the repairs were added.
#[derive(Default)]
struct Restore(Vec<Repair>);

impl Restore {
    fn start(&mut self, i: u32) {
        self.0.push(Repair::Start(i));
    }

    fn sql(&mut self, i: u32, sql: &str) {
        self.0.push(Repair::Sql(i, sql.to_string()));
    }
}

impl Drop for Restore {
    fn drop(&mut self) {
        for repair in self.0.drain(..) {
            let result = match &repair {
                Repair::Start(i) => std::panic::catch_unwind(|| {
                    sandbox_cmd("start", *i);
                })
                .map_err(|_| format!("scripts/sandbox.sh start db{i} failed")),
                Repair::Sql(i, sql) => root_sql(*i, sql).map(drop),
            };
            if let Err(e) = result {
                eprintln!("RESTORE FAILED: {e} (run: scripts/sandbox.sh up)");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The admin API: a minimal HTTP/1.1 client.

struct Reply {
    status: u16,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

fn http(addr: &str, method: &str, path: &str) -> Result<Reply, String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    s.set_write_timeout(Some(Duration::from_secs(5))).ok();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    );
    s.write_all(req.as_bytes())
        .map_err(|e| format!("{method} {path}: {e}"))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .map_err(|e| format!("{method} {path}: reading the reply: {e}"))?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| {
            format!(
                "{method} {path}: no header end in {:?}",
                String::from_utf8_lossy(&raw)
            )
        })?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("{method} {path}: bad status line in {head:?}"))?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    if chunked {
        body = dechunk(&body).ok_or_else(|| format!("{method} {path}: bad chunked body"))?;
    }
    Ok(Reply {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n")?;
        let size_txt = std::str::from_utf8(&b[..eol]).ok()?;
        let size = usize::from_str_radix(size_txt.split(';').next()?.trim(), 16).ok()?;
        b = &b[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
}

/// The servers as the admin API reports them, by name.
type States = BTreeMap<String, Value>;

fn servers(admin: &str) -> Result<States, String> {
    let r = http(admin, "GET", "/v1/servers")?;
    if r.status != 200 {
        return Err(format!("GET /v1/servers: {} {}", r.status, r.body));
    }
    let v: Value =
        serde_json::from_str(&r.body).map_err(|e| format!("GET /v1/servers: {e}: {}", r.body))?;
    let list = v
        .as_array()
        .ok_or_else(|| format!("GET /v1/servers: not a list: {}", r.body))?;
    Ok(list
        .iter()
        .filter_map(|s| Some((s.get("name")?.as_str()?.to_string(), s.clone())))
        .collect())
}

fn role(states: &States, name: &str) -> String {
    states
        .get(name)
        .and_then(|s| s.get("role"))
        .and_then(Value::as_str)
        .unwrap_or("<missing>")
        .to_string()
}

fn flag(states: &States, name: &str, key: &str) -> Option<bool> {
    states.get(name)?.get(key)?.as_bool()
}

fn num(states: &States, name: &str, key: &str) -> Option<u64> {
    states.get(name)?.get(key)?.as_u64()
}

/// A short line per server, for messages.
fn summary(states: &States) -> String {
    states
        .iter()
        .map(|(name, s)| {
            format!(
                "{name}: role={} reachable={} broken={} maint={} drain={} lag={} behind={} err={}",
                s.get("role").unwrap_or(&Value::Null),
                s.get("reachable").unwrap_or(&Value::Null),
                s.get("replication_broken").unwrap_or(&Value::Null),
                s.get("maintenance").unwrap_or(&Value::Null),
                s.get("drain").unwrap_or(&Value::Null),
                s.get("lag_seconds").unwrap_or(&Value::Null),
                s.get("gtid_behind").unwrap_or(&Value::Null),
                s.get("last_error").unwrap_or(&Value::Null),
            )
        })
        .collect::<Vec<_>>()
        .join("\n  ")
}

/// Polls the admin API until `pred` holds; the time from `since` when it first did. Panics
/// (with the last states) after [`WAIT`].
fn wait_for(admin: &str, what: &str, since: Instant, pred: impl Fn(&States) -> bool) -> Duration {
    let deadline = Instant::now() + WAIT;
    let mut last: Result<States, String>;
    loop {
        let now = Instant::now();
        match servers(admin) {
            Ok(states) => {
                if pred(&states) {
                    return now.saturating_duration_since(since);
                }
                last = Ok(states);
            }
            Err(e) => last = Err(e),
        }
        if Instant::now() > deadline {
            let last = match last {
                Ok(s) => format!("  {}", summary(&s)),
                Err(e) => e,
            };
            panic!("{what}: not within {WAIT:?}; last states:\n{last}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `failed_checks` of `server` in the `repl` monitor's diagnostics (`GET /v1/monitors`).
fn failed_checks(admin: &str, server: &str) -> Option<u64> {
    monitor_connection(admin, server, "failed_checks")
}

/// A number about `server` in the `repl` monitor's diagnostics (`GET /v1/monitors`,
/// `diagnostics.monitor_connections`): `failed_checks`, `connection_id`.
fn monitor_connection(admin: &str, server: &str, key: &str) -> Option<u64> {
    let r = http(admin, "GET", "/v1/monitors").ok()?;
    let v: Value = serde_json::from_str(&r.body).ok()?;
    v.as_array()?.iter().find(|m| m["name"] == "repl")?["diagnostics"]["monitor_connections"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == server)?[key]
        .as_u64()
}

/// Prints a measured transition and asserts it against `limit`.
fn transition(server: &str, state: &str, took: Duration, limit: Duration, note: &str) {
    eprintln!(
        "TRANSITION {server} {state} after {:.2}s ({note}; limit {:.2}s)",
        took.as_secs_f64(),
        limit.as_secs_f64()
    );
    assert!(
        took <= limit,
        "{server} took {took:?} to become {state} ({note}); the limit is {limit:?}"
    );
}

fn healthy(s: &States) -> bool {
    role(s, "db1") == "primary" && role(s, "db2") == "replica" && role(s, "db3") == "replica"
}

// ---------------------------------------------------------------------------------------------
// The proxy under test.

/// What a test's config differs in.
struct Cfg {
    /// Extra `servers:` entries: (name, address).
    extra_servers: Vec<(String, String)>,
    /// The monitor's servers.
    monitored: Vec<&'static str>,
    /// The services' servers.
    routed: Vec<&'static str>,
    /// Give db1 `role: replica` and db2 `role: primary` (wrong on purpose).
    wrong_roles: bool,
}

impl Default for Cfg {
    fn default() -> Self {
        Cfg {
            extra_servers: Vec::new(),
            monitored: vec!["db1", "db2", "db3"],
            routed: vec!["db1", "db2", "db3"],
            wrong_roles: false,
        }
    }
}

fn config(rw: u16, ro: u16, admin: u16, cfg: &Cfg) -> String {
    let (r1, r2, r3) = if cfg.wrong_roles {
        (", role: replica", ", role: primary", ", role: replica")
    } else {
        ("", "", "")
    };
    let mut servers = format!(
        "  - {{ name: db1, address: 127.0.0.1:3307{r1} }}\n  \
         - {{ name: db2, address: 127.0.0.1:3308{r2} }}\n  \
         - {{ name: db3, address: 127.0.0.1:3309{r3} }}\n"
    );
    for (name, addr) in &cfg.extra_servers {
        servers.push_str(&format!("  - {{ name: {name}, address: {addr} }}\n"));
    }
    let monitored = cfg.monitored.join(", ");
    let routed = cfg.routed.join(", ");
    format!(
        r#"log: {{ level: "info,switchyard=debug,switchyard_mariadbmon=debug" }}
servers:
{servers}monitors:
  - name: repl
    module: mariadbmon
    servers: [{monitored}]
    user: monitor
    password: monitor
    options:
      interval: {interval}ms
      failcount: {FAILCOUNT}
      connect_timeout: {timeout}ms
      read_timeout: {timeout}ms
services:
  - name: rw
    router: readconnroute
    monitor: repl
    servers: [{routed}]
    user: switchyard
    password: switchyard
    options: {{ router_options: primary }}
  - name: ro
    router: readconnroute
    monitor: repl
    servers: [{routed}]
    user: switchyard
    password: switchyard
    options: {{ router_options: replica }}
listeners:
  - {{ name: rw, service: rw, address: 127.0.0.1:{rw} }}
  - {{ name: ro, service: ro, address: 127.0.0.1:{ro} }}
admin: {{ address: 127.0.0.1:{admin} }}
"#,
        interval = INTERVAL.as_millis(),
        timeout = TIMEOUT.as_millis(),
    )
}

struct Harness {
    proxy: Proxy,
    admin: String,
    /// When the proxy's listeners (and admin API) first answered.
    started: Instant,
}

impl Harness {
    /// Brings the sandbox up, starts the proxy, and (when `wait_healthy`) waits until the
    /// monitor reports db1 primary and db2, db3 replicas.
    fn start(cfg: &Cfg, wait_healthy: bool) -> Harness {
        common::sandbox();
        let mut last = String::new();
        for _ in 0..3 {
            let (rw, ro, admin) = (
                common::free_port(),
                common::free_port(),
                common::free_port(),
            );
            if rw == ro || rw == admin || ro == admin {
                continue;
            }
            match Proxy::spawn(&config(rw, ro, admin, cfg), &[rw, ro, admin]) {
                Ok(mut proxy) => {
                    proxy.rw_port = rw;
                    proxy.ro_port = ro;
                    let h = Harness {
                        proxy,
                        admin: format!("{HOST}:{admin}"),
                        started: Instant::now(),
                    };
                    if wait_healthy {
                        let took = wait_for(
                            &h.admin,
                            "the sandbox healthy through the monitor",
                            h.started,
                            healthy,
                        );
                        eprintln!(
                            "MONITOR first healthy state {:.2}s after the proxy listened",
                            took.as_secs_f64()
                        );
                    }
                    return h;
                }
                Err(e) => last = e,
            }
        }
        panic!("the proxy did not start: {last}");
    }

    fn states(&self) -> States {
        servers(&self.admin).unwrap_or_else(|e| panic!("{e}"))
    }

    fn wait(&self, what: &str, since: Instant, pred: impl Fn(&States) -> bool) -> Duration {
        wait_for(&self.admin, what, since, pred)
    }

    /// Runs `scripts/sandbox.sh <cmd> db<i>` on another thread while probing the server's port
    /// and polling the admin API, until the command has finished and `pred` has held. The
    /// transition is timed from the moment the port changed (closed for `stop`/`kill`, open for
    /// `start`): a clean shutdown takes a second or so, and the monitor may see it before the
    /// command returns.
    fn fault(&self, cmd: &str, i: u32, what: &str, pred: impl Fn(&States) -> bool) -> Fault {
        let port = 3306 + i as u16;
        let want_open = cmd == "start";
        let begin = Instant::now();
        std::thread::scope(|scope| {
            let mut command = Some(scope.spawn(move || sandbox_cmd(cmd, i)));
            let deadline = begin + WAIT + Duration::from_secs(30);
            let (mut port_changed, mut state_at, mut command_took) = (None, None, None);
            let mut last = String::new();
            loop {
                let now = Instant::now();
                if port_changed.is_none() {
                    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
                    let open =
                        TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok();
                    if open == want_open {
                        port_changed = Some(now - begin);
                    }
                }
                if state_at.is_none() {
                    match servers(&self.admin) {
                        Ok(states) if pred(&states) => state_at = Some(now - begin),
                        Ok(states) => last = summary(&states),
                        Err(e) => last = e,
                    }
                }
                if command.as_ref().is_some_and(|c| c.is_finished()) {
                    command_took = Some(match command.take().unwrap().join() {
                        Ok(d) => d,
                        Err(e) => std::panic::resume_unwind(e),
                    });
                    // The command is over: the port has changed by now, even if no probe
                    // happened to see it.
                    port_changed.get_or_insert(now - begin);
                }
                if let (Some(state_at), Some(command_took)) = (state_at, command_took) {
                    let port_changed = port_changed.unwrap_or(command_took);
                    return Fault {
                        command_took,
                        port_changed,
                        state_at,
                        took: state_at.saturating_sub(port_changed),
                    };
                }
                if now > deadline {
                    panic!(
                        "{what}: not within {:?} of `sandbox.sh {cmd} db{i}` (finished: {}); last states:\n  {last}",
                        deadline - begin,
                        command_took.is_some()
                    );
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    }
}

/// The timing of a fault injected with [`Harness::fault`], from the start of the command.
struct Fault {
    command_took: Duration,
    port_changed: Duration,
    state_at: Duration,
    /// From the port's change to the state.
    took: Duration,
}

impl Fault {
    fn report(&self, server: &str, state: &str, how: &str, limit: Duration) {
        let note = format!(
            "{how}: from the port's change at {:.2}s; {:.2}s after the command began, which took {:.2}s",
            self.port_changed.as_secs_f64(),
            self.state_at.as_secs_f64(),
            self.command_took.as_secs_f64()
        );
        transition(server, state, self.took, limit, &note);
    }
}

// ---------------------------------------------------------------------------------------------
// Client connections through the proxy.

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(f)
}

/// Opens `n` connections through the proxy's listener at `port` one after the other, holding
/// each open until all are made (readconnroute balances by open connections), and returns the
/// `@@server_id` each reached. Failed connections are reported as `Err`.
fn server_ids(port: u16, n: usize) -> Vec<Result<u32, String>> {
    block_on(async move {
        let mut conns = Vec::new();
        let mut ids = Vec::new();
        for _ in 0..n {
            let opts = common::builder(port, APP.0, APP.1);
            let r = tokio::time::timeout(Duration::from_secs(10), async {
                let mut c = Conn::new(opts).await.map_err(|e| e.to_string())?;
                let id: Option<u32> = c
                    .query_first("SELECT @@server_id")
                    .await
                    .map_err(|e| e.to_string())?;
                Ok::<_, String>((c, id.unwrap_or(0)))
            })
            .await
            .unwrap_or_else(|_| Err("no answer within 10s".into()));
            match r {
                Ok((c, id)) => {
                    conns.push(c);
                    ids.push(Ok(id));
                }
                Err(e) => ids.push(Err(e)),
            }
        }
        for c in conns {
            let _ = c.disconnect().await;
        }
        ids
    })
}

/// The server ids of `n` connections, all of which must succeed.
fn ok_ids(port: u16, n: usize, what: &str) -> Vec<u32> {
    server_ids(port, n)
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("{what}: a connection failed: {e}")))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// A TCP relay in the test process that can freeze: connections are then accepted but nothing
// moves (the blocked-port fault). With no upstream it is a pure blackhole.

struct Relay {
    port: u16,
    frozen: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    held: Arc<Mutex<Vec<TcpStream>>>,
    thread: Option<JoinHandle<()>>,
}

impl Relay {
    fn new(upstream: Option<u16>) -> Relay {
        let listener = TcpListener::bind((HOST, 0)).expect("bind the relay");
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let frozen = Arc::new(AtomicBool::new(upstream.is_none()));
        let stop = Arc::new(AtomicBool::new(false));
        let held = Arc::new(Mutex::new(Vec::new()));
        let (f, s, h) = (frozen.clone(), stop.clone(), held.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let _ = client.set_nonblocking(false);
                        match upstream {
                            Some(up) if !f.load(Ordering::Relaxed) => {
                                match TcpStream::connect((HOST, up)) {
                                    Ok(server) => {
                                        pipe(
                                            client.try_clone().unwrap(),
                                            server.try_clone().unwrap(),
                                            &f,
                                            &s,
                                        );
                                        pipe(server, client, &f, &s);
                                    }
                                    Err(_) => drop(client),
                                }
                            }
                            _ => h.lock().unwrap().push(client),
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Relay {
            port,
            frozen,
            stop,
            held,
            thread: Some(thread),
        }
    }

    fn addr(&self) -> String {
        format!("{HOST}:{}", self.port)
    }

    /// Stops moving bytes; new connections are accepted and never answered.
    fn freeze(&self) {
        self.frozen.store(true, Ordering::Relaxed);
    }

    /// Moves bytes again; the connections accepted while frozen are closed.
    fn thaw(&self) {
        self.frozen.store(false, Ordering::Relaxed);
        for s in self.held.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

/// Copies `from` to `to` on a thread while not frozen; ends on EOF, an error, or `stop`.
fn pipe(mut from: TcpStream, mut to: TcpStream, frozen: &Arc<AtomicBool>, stop: &Arc<AtomicBool>) {
    let (frozen, stop) = (frozen.clone(), stop.clone());
    from.set_read_timeout(Some(Duration::from_millis(20))).ok();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            if frozen.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => break,
            }
        }
        let _ = from.shutdown(Shutdown::Both);
        let _ = to.shutdown(Shutdown::Both);
    });
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.thaw();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The tests.

/// 1. A replica's mariadbd stops cleanly: down within the budget, reads all go to the other
///    replica; started again: a replica again, and reads spread back.
#[test]
fn stopped_replica_goes_down_and_comes_back() {
    let _serial = serial();
    let h = Harness::start(&Cfg::default(), true);
    let mut restore = Restore::default();

    let before = ok_ids(h.proxy.ro_port, 4, "ro before the fault");
    assert!(
        before.contains(&2) && before.contains(&3) && !before.contains(&1),
        "with both replicas up, ro connections should spread over server_id 2 and 3: {before:?}"
    );

    restore.start(3);
    let f = h.fault("stop", 3, "db3 down", |s| role(s, "db3") == "down");
    let states = h.states();
    assert_eq!(
        flag(&states, "db3", "reachable"),
        Some(false),
        "{}",
        summary(&states)
    );
    assert!(
        healthy_but(&states, "db3"),
        "the others changed: {}",
        summary(&states)
    );
    f.report(
        "db3",
        "down",
        "`sandbox.sh stop db3` (clean shutdown)",
        budget(),
    );

    let during = ok_ids(h.proxy.ro_port, 4, "ro while db3 is down");
    assert!(
        during.iter().all(|&id| id == 2),
        "ro connections must all reach db2 (server_id 2): {during:?}"
    );
    let rw = ok_ids(h.proxy.rw_port, 1, "rw while db3 is down");
    assert_eq!(rw, [1], "rw must reach the primary");

    let f = h.fault("start", 3, "db3 replica again", |s| {
        role(s, "db3") == "replica"
    });
    f.report("db3", "replica", "`sandbox.sh start db3`", budget());
    let states = h.states();
    assert!(healthy(&states), "{}", summary(&states));
    assert_eq!(flag(&states, "db3", "replication_broken"), Some(false));

    let after = ok_ids(h.proxy.ro_port, 4, "ro after db3 came back");
    assert!(
        after.contains(&3),
        "ro connections should reach db3 again: {after:?}"
    );

    // The state changes are logged once each, not at every poll.
    let log = h.proxy.log();
    let db3_lines: Vec<&str> = log
        .lines()
        .filter(|l| {
            l.contains("db3") && (l.contains("WARN") || l.contains("INFO") || l.contains("ERROR"))
        })
        .collect();
    let monitor_lines = db3_lines
        .iter()
        .filter(|l| l.contains("switchyard_mariadbmon"))
        .count();
    assert!(
        (3..=8).contains(&monitor_lines),
        "the monitor should log each state change of db3 once (down, up, maybe replication \
         states), not at every poll: {monitor_lines} lines:\n  {}",
        db3_lines.join("\n  ")
    );
    eprintln!(
        "LOG {} info/warn/error lines name db3 over the test:\n  {}",
        db3_lines.len(),
        db3_lines.join("\n  ")
    );
    drop(restore);
}

/// Every server but `except` in its healthy role.
fn healthy_but(s: &States, except: &str) -> bool {
    [("db1", "primary"), ("db2", "replica"), ("db3", "replica")]
        .iter()
        .all(|(n, r)| *n == except || role(s, n) == *r)
}

/// 2. `STOP SLAVE` on a replica: broken and only `running` at once (the server answers); reads
///    avoid it; `START SLAVE`: a replica again.
#[test]
fn stop_slave_breaks_replica() {
    let _serial = serial();
    let h = Harness::start(&Cfg::default(), true);
    let mut restore = Restore::default();
    restore.sql(2, "START SLAVE");

    let t0 = Instant::now();
    root_sql_ok(2, "STOP SLAVE");
    let took = h.wait("db2 broken", t0, |s| {
        flag(s, "db2", "replication_broken") == Some(true) && role(s, "db2") == "running"
    });
    let states = h.states();
    assert_eq!(
        flag(&states, "db2", "reachable"),
        Some(true),
        "{}",
        summary(&states)
    );
    assert!(
        healthy_but(&states, "db2"),
        "the others changed: {}",
        summary(&states)
    );
    transition(
        "db2",
        "running+replication_broken",
        took,
        budget(),
        "after STOP SLAVE",
    );

    let during = ok_ids(h.proxy.ro_port, 4, "ro while db2's replication is stopped");
    assert!(
        during.iter().all(|&id| id == 3),
        "ro must avoid the broken db2: {during:?}"
    );

    let t1 = Instant::now();
    root_sql_ok(2, "START SLAVE");
    let took = h.wait("db2 replica again", t1, |s| {
        role(s, "db2") == "replica" && flag(s, "db2", "replication_broken") == Some(false)
    });
    transition("db2", "replica", took, budget(), "after START SLAVE");
    let after = ok_ids(h.proxy.ro_port, 4, "ro after START SLAVE");
    assert!(
        after.contains(&2),
        "ro connections should reach db2 again: {after:?}"
    );
    drop(restore);
}

/// 3. A lagging replica: `STOP SLAVE SQL_THREAD` while 50 transactions commit on the primary:
///    `gtid_behind` counts them; `START SLAVE SQL_THREAD`: back to 0.
#[test]
fn sql_thread_stopped_replica_lags() {
    let _serial = serial();
    let h = Harness::start(&Cfg::default(), true);
    let mut restore = Restore::default();
    let table = format!("test.{}", common::unique("monlag"));
    restore.sql(2, "START SLAVE SQL_THREAD");
    restore.sql(1, &format!("DROP TABLE IF EXISTS {table}"));

    root_sql_ok(1, &format!("CREATE TABLE {table} (id INT PRIMARY KEY)"));
    // Both replicas have the table before the SQL thread stops.
    let pos = root_sql_ok(1, "SELECT @@gtid_binlog_pos")
        .trim()
        .to_string();
    for i in [2, 3] {
        let r = root_sql_ok(i, &format!("SELECT MASTER_GTID_WAIT('{pos}', 10)"));
        assert_eq!(r.trim(), "0", "db{i} did not reach {pos}");
    }
    h.wait("db2 caught up", Instant::now(), |s| {
        num(s, "db2", "gtid_behind") == Some(0)
    });

    root_sql_ok(2, "STOP SLAVE SQL_THREAD");
    let t0 = Instant::now();
    let inserts: String = (1..=50)
        .map(|n| format!("INSERT INTO {table} VALUES ({n});"))
        .collect();
    root_sql_ok(1, &inserts);
    let t1 = Instant::now();
    let took = h.wait("db2 behind by 50 transactions", t1, |s| {
        num(s, "db2", "gtid_behind").is_some_and(|b| b >= 50)
    });
    let states = h.states();
    let db2 = &states["db2"];
    eprintln!(
        "LAG db2 with its SQL thread stopped: gtid_behind={} lag_seconds={} role={} replication_broken={} (50 inserts took {:.2}s)",
        db2["gtid_behind"],
        db2["lag_seconds"],
        db2["role"],
        db2["replication_broken"],
        (t1 - t0).as_secs_f64()
    );
    assert!(
        db2["lag_seconds"].is_null() || db2["lag_seconds"].is_u64(),
        "lag_seconds must be a number or null: {}",
        db2["lag_seconds"]
    );
    assert_eq!(role(&states, "db1"), "primary", "{}", summary(&states));
    assert_eq!(role(&states, "db3"), "replica", "{}", summary(&states));
    transition(
        "db2",
        "gtid_behind>=50",
        took,
        budget(),
        "after 50 commits on the primary with its SQL thread stopped",
    );
    // db3 replicates normally meanwhile.
    let took3 = h.wait("db3 caught up", t1, |s| {
        num(s, "db3", "gtid_behind") == Some(0)
    });
    eprintln!(
        "LAG db3 (replicating) at gtid_behind 0 {:.2}s after the inserts",
        took3.as_secs_f64()
    );

    let t2 = Instant::now();
    root_sql_ok(2, "START SLAVE SQL_THREAD");
    let took = h.wait("db2 caught up again", t2, |s| {
        num(s, "db2", "gtid_behind") == Some(0) && role(s, "db2") == "replica"
    });
    transition(
        "db2",
        "gtid_behind=0,replica",
        took,
        budget(),
        "after START SLAVE SQL_THREAD",
    );
    let n = root_sql_ok(2, &format!("SELECT COUNT(*) FROM {table}"));
    assert_eq!(n.trim(), "50");
    drop(restore);
}

/// Samples the admin API every 20 ms on another thread until `stop` is set.
fn sample(admin: String, stop: Arc<AtomicBool>) -> JoinHandle<Vec<(Instant, States)>> {
    std::thread::spawn(move || {
        let mut out = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            if let Ok(s) = servers(&admin) {
                out.push((Instant::now(), s));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        out
    })
}

/// Kills every connection of the `monitor` user on instance `i`; their ids.
fn kill_monitor_connections(i: u32) -> Vec<u64> {
    let ids: Vec<u64> = root_sql_ok(
        i,
        "SELECT ID FROM information_schema.PROCESSLIST WHERE USER='monitor'",
    )
    .lines()
    .filter_map(|l| l.trim().parse().ok())
    .collect();
    for id in &ids {
        // Gone in between is fine.
        let _ = root_sql(i, &format!("KILL CONNECTION {id}"));
    }
    ids
}

/// 4. The monitor's connections killed under it: one failed check is absorbed by failcount,
///    so no server flaps to down.
#[test]
fn killed_monitor_connection_does_not_flap() {
    let _serial = serial();
    let h = Harness::start(&Cfg::default(), true);

    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sample(h.admin.clone(), stop.clone());
    let mut killed = Vec::new();
    let t0 = Instant::now();
    // Three kills on the primary, far enough apart for the failure count to reset, then one on
    // every server at once.
    for round in 0..4 {
        let targets: &[u32] = if round < 3 { &[1] } else { &[1, 2, 3] };
        let before: Vec<Option<u64>> = targets
            .iter()
            .map(|i| monitor_connection(&h.admin, &format!("db{i}"), "connection_id"))
            .collect();
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut n = 0;
        // The monitor may hold no connection at the very moment: look again briefly.
        while n == 0 && Instant::now() < deadline {
            for &i in targets {
                let ids = kill_monitor_connections(i);
                n += ids.len();
                killed.extend(ids.into_iter().map(|id| (round, i, id)));
            }
            if n == 0 {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        // The monitor notices at its next check and opens a new connection.
        let t_kill = Instant::now();
        for (&i, old) in targets.iter().zip(&before) {
            let name = format!("db{i}");
            let deadline = Instant::now() + WAIT;
            loop {
                let id = monitor_connection(&h.admin, &name, "connection_id");
                if id.is_some() && id != *old {
                    let took = t_kill.elapsed();
                    eprintln!(
                        "TRANSITION {name} monitor reconnected after {:.2}s (connection {old:?} killed, now {id:?})",
                        took.as_secs_f64()
                    );
                    assert!(
                        took <= budget(),
                        "{name}: the monitor reconnected only after {took:?}"
                    );
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{name}: the monitor kept connection id {id:?} after it was killed"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        // Let the failure count reset before the next round.
        std::thread::sleep(INTERVAL * (FAILCOUNT + 1));
    }
    std::thread::sleep(INTERVAL * 2);
    stop.store(true, Ordering::Relaxed);
    let samples = sampler.join().unwrap();
    eprintln!(
        "KILLED monitor connections (round, db, id): {killed:?} over {:.2}s",
        t0.elapsed().as_secs_f64()
    );
    assert!(
        killed.iter().any(|k| k.1 == 1),
        "found no connection of the monitor user on db1 to kill (does the monitor keep one?)"
    );
    // The monitor reconnected.
    let again = root_sql_ok(
        1,
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER='monitor'",
    );
    eprintln!("KILLED monitor connections on db1 now: {}", again.trim());

    assert!(samples.len() > 20, "too few samples: {}", samples.len());
    let mut worst = Duration::ZERO;
    for name in ["db1", "db2", "db3"] {
        let want = if name == "db1" { "primary" } else { "replica" };
        let mut off_since: Option<Instant> = None;
        for (at, s) in &samples {
            let r = role(s, name);
            assert_ne!(
                r,
                "down",
                "{name} flapped to down after its monitor connection was killed:\n  {}",
                summary(s)
            );
            if r != want {
                off_since.get_or_insert(*at);
            } else if let Some(since) = off_since.take() {
                worst = worst.max(*at - since);
            }
        }
        if let Some(since) = off_since {
            panic!(
                "{name} not {want} at the end (since {:.2}s)",
                since.elapsed().as_secs_f64()
            );
        }
    }
    let unreachable = samples
        .iter()
        .filter(|(_, s)| flag(s, "db1", "reachable") == Some(false))
        .count();
    eprintln!(
        "TRANSITION none: no server left its role over {} samples ({unreachable} with db1 unreachable); the longest excursion {:.2}s",
        samples.len(),
        worst.as_secs_f64()
    );
    assert!(
        worst <= INTERVAL + Duration::from_millis(500),
        "a role excursion of {worst:?}"
    );
}

/// 5. A server restarted (clean stop + start), then crashed (SIGKILL) and started: down, then
///    a replica again, each within the budget.
#[test]
fn restarted_and_crashed_replica() {
    let _serial = serial();
    let h = Harness::start(&Cfg::default(), true);
    let mut restore = Restore::default();
    restore.start(2);

    for (fault, how) in [("stop", "clean shutdown"), ("kill", "SIGKILL")] {
        let f = h.fault(fault, 2, &format!("db2 down after {fault}"), |s| {
            role(s, "db2") == "down"
        });
        let states = h.states();
        assert!(
            healthy_but(&states, "db2"),
            "the others changed: {}",
            summary(&states)
        );
        f.report(
            "db2",
            "down",
            &format!("`sandbox.sh {fault} db2` ({how})"),
            budget(),
        );
        let ids = ok_ids(h.proxy.ro_port, 3, "ro while db2 is down");
        assert!(
            ids.iter().all(|&id| id == 3),
            "ro must avoid the down db2: {ids:?}"
        );

        let f = h.fault("start", 2, "db2 replica after start", |s| {
            role(s, "db2") == "replica"
        });
        f.report(
            "db2",
            "replica",
            &format!("`sandbox.sh start db2` after {how}"),
            budget(),
        );
        let states = h.states();
        assert!(healthy(&states), "{}", summary(&states));
    }
    drop(restore);
}

/// 6. A port that accepts and never answers. db4 relays to db2 (the only path the monitor has
///    to it) and then freezes: down within `failcount × (interval + timeout)`; thawed: a
///    replica again. db5 is a blackhole from the start: never reachable, and the others are
///    found and stay as they are.
#[test]
fn blocked_port_goes_down() {
    let _serial = serial();
    let relay = Relay::new(Some(3308));
    let hole = Relay::new(None);
    let cfg = Cfg {
        extra_servers: vec![("db4".into(), relay.addr()), ("db5".into(), hole.addr())],
        monitored: vec!["db1", "db3", "db4", "db5"],
        routed: vec!["db1", "db3", "db4"],
        wrong_roles: false,
    };
    let h = Harness::start(&cfg, false);
    let known = h.wait(
        "db1, db3 and db4 known with db5 a blackhole",
        h.started,
        |s| {
            role(s, "db1") == "primary"
                && role(s, "db3") == "replica"
                && role(s, "db4") == "replica"
        },
    );
    eprintln!(
        "MONITOR db1 primary, db3 and db4 replicas {:.2}s after the proxy listened, with db5 a blackhole",
        known.as_secs_f64()
    );
    assert!(
        known <= budget(),
        "a blackhole delayed the others: {known:?}"
    );
    // db5 is `down` from the first snapshot (nothing known yet); what is timed is the monitor
    // counting `failcount` failed (timed-out) checks of it.
    let deadline = Instant::now() + WAIT;
    let took = loop {
        let now = Instant::now();
        let failed = failed_checks(&h.admin, "db5");
        if failed.is_some_and(|n| n >= u64::from(FAILCOUNT)) {
            break now - h.started;
        }
        assert!(
            now < deadline,
            "db5: {failed:?} failed checks after {WAIT:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let states = h.states();
    let err = states["db5"]["last_error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        err.contains("timed out"),
        "db5's last_error should say that the check timed out: {}",
        states["db5"]
    );
    assert_eq!(role(&states, "db5"), "down");
    transition(
        "db5",
        &format!("down with {FAILCOUNT} failed checks"),
        took,
        hang_budget(),
        "blackhole from the start; from the proxy listening",
    );
    assert_eq!(
        num(&states, "db4", "server_id"),
        Some(2),
        "db4 relays to db2: {}",
        summary(&states)
    );
    eprintln!("BLACKHOLE db5: {}", states["db5"]);

    let before = ok_ids(h.proxy.ro_port, 4, "ro through the relay");
    assert!(
        before.contains(&2) && before.contains(&3),
        "ro should spread over db3 and db4: {before:?}"
    );

    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sample(h.admin.clone(), stop.clone());
    let t0 = Instant::now();
    relay.freeze();
    let took = h.wait("db4 down once frozen", t0, |s| role(s, "db4") == "down");
    transition(
        "db4",
        "down",
        took,
        hang_budget(),
        "port frozen (accepts, never answers)",
    );
    stop.store(true, Ordering::Relaxed);
    for (_, s) in sampler.join().unwrap() {
        assert!(
            role(&s, "db1") == "primary" && role(&s, "db3") == "replica",
            "the others changed while db4 hung:\n  {}",
            summary(&s)
        );
        assert_ne!(
            flag(&s, "db5", "reachable"),
            Some(true),
            "the blackhole was reachable?"
        );
    }
    let during = ok_ids(h.proxy.ro_port, 4, "ro while db4 hangs");
    assert!(
        during.iter().all(|&id| id == 3),
        "ro must avoid the hung db4: {during:?}"
    );

    let t1 = Instant::now();
    relay.thaw();
    let took = h.wait("db4 replica once thawed", t1, |s| {
        role(s, "db4") == "replica"
    });
    transition("db4", "replica", took, hang_budget(), "port thawed");
    let states = h.states();
    assert_eq!(role(&states, "db5"), "down");
    drop(h);
    drop(hole);
    drop(relay);
}

/// 7. Operator flags through the admin API and `switchyard ctl`: maintenance shows at once,
///    and new ro connections avoid the server; cleared, it is used again. Drain likewise.
#[test]
fn maintenance_and_drain_through_admin_api_and_ctl() {
    let _serial = serial();
    let h = Harness::start(&Cfg::default(), true);
    let admin = h.admin.as_str();

    // Error answers.
    let r = http(admin, "GET", "/v1/servers/nope").unwrap();
    assert_eq!(r.status, 404, "GET unknown server: {}", r.body);
    assert!(r.json()["error"].is_string(), "404 body: {}", r.body);
    let r = http(admin, "PUT", "/v1/servers/nope/maintenance").unwrap();
    assert_eq!(
        r.status, 404,
        "PUT maintenance on an unknown server: {}",
        r.body
    );
    let r = http(admin, "PUT", "/v1/servers/db2/bogus").unwrap();
    assert_eq!(r.status, 400, "PUT an unknown flag: {}", r.body);
    let r = http(admin, "GET", "/v1/servers/db2").unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let one = r.json();
    assert_eq!(one["name"], "db2");
    assert_eq!(one["address"], "127.0.0.1:3308");
    assert_eq!(one["server_id"], 2);
    assert_eq!(one["maintenance"], false);
    let r = http(admin, "GET", "/v1/monitors").unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let mons = r.json();
    assert_eq!(mons[0]["name"], "repl", "{}", r.body);
    assert_eq!(mons[0]["module"], "mariadbmon", "{}", r.body);
    assert_eq!(mons[0]["state"]["primary"], "db1", "{}", r.body);

    for flag_name in ["maintenance", "drain"] {
        let path = format!("/v1/servers/db2/{flag_name}");
        let r = http(admin, "PUT", &path).unwrap();
        assert_eq!(r.status, 204, "PUT {path}: {}", r.body);
        let s = h.states();
        assert_eq!(
            flag(&s, "db2", flag_name),
            Some(true),
            "{flag_name} not shown at once:\n  {}",
            summary(&s)
        );
        let ids = ok_ids(h.proxy.ro_port, 4, &format!("ro with db2 in {flag_name}"));
        assert!(
            ids.iter().all(|&id| id == 3),
            "ro must avoid db2 in {flag_name}: {ids:?}"
        );
        assert_eq!(ok_ids(h.proxy.rw_port, 1, "rw"), [1]);
        // Still there at the next polls (the monitor keeps operator flags).
        std::thread::sleep(INTERVAL * 3);
        assert_eq!(
            flag(&h.states(), "db2", flag_name),
            Some(true),
            "{flag_name} lost by a poll"
        );

        let r = http(admin, "DELETE", &path).unwrap();
        assert_eq!(r.status, 204, "DELETE {path}: {}", r.body);
        let s = h.states();
        assert_eq!(
            flag(&s, "db2", flag_name),
            Some(false),
            "{flag_name} not cleared at once:\n  {}",
            summary(&s)
        );
        let ids = ok_ids(h.proxy.ro_port, 4, &format!("ro after {flag_name} cleared"));
        assert!(
            ids.contains(&2),
            "ro should use db2 again after {flag_name}: {ids:?}"
        );
    }

    // The same through the CLI.
    let ctl = |args: &[&str]| {
        let mut all = vec!["ctl", "--admin", admin];
        all.extend_from_slice(args);
        let (code, out, err) = common::run_switchyard(&all, Duration::from_secs(10));
        assert_eq!(
            code,
            Some(0),
            "switchyard {}: stdout {out}\nstderr {err}",
            all.join(" ")
        );
        out
    };
    ctl(&["set", "server", "db2", "maintenance"]);
    assert_eq!(
        flag(&h.states(), "db2", "maintenance"),
        Some(true),
        "ctl set did not set maintenance"
    );
    let table = ctl(&["list", "servers"]);
    eprintln!("CTL list servers:\n{table}");
    for name in ["db1", "db2", "db3"] {
        assert!(
            table.contains(name),
            "`ctl list servers` lacks {name}:\n{table}"
        );
    }
    let db2_line = table
        .lines()
        .find(|l| l.contains("db2"))
        .unwrap_or_default();
    assert!(
        db2_line.to_lowercase().contains("maint"),
        "`ctl list servers` does not show db2 in maintenance:\n{table}"
    );
    let ids = ok_ids(h.proxy.ro_port, 4, "ro with db2 in maintenance by ctl");
    assert!(
        ids.iter().all(|&id| id == 3),
        "ro must avoid db2 in maintenance: {ids:?}"
    );
    ctl(&["clear", "server", "db2", "maintenance"]);
    assert_eq!(
        flag(&h.states(), "db2", "maintenance"),
        Some(false),
        "ctl clear did not clear maintenance"
    );
    let ids = ok_ids(h.proxy.ro_port, 4, "ro after ctl clear");
    assert!(ids.contains(&2), "ro should use db2 again: {ids:?}");

    let all = [
        "ctl",
        "--admin",
        admin,
        "set",
        "server",
        "nope",
        "maintenance",
    ];
    let (code, out, err) = common::run_switchyard(&all, Duration::from_secs(10));
    assert_ne!(
        code,
        Some(0),
        "ctl on an unknown server must fail: {out} {err}"
    );
}

/// 8. readconnroute takes its roles from the monitor: db1 listed as a replica and db2 as the
///    primary in the config, and still the primary service reaches server_id 1.
#[test]
fn readconnroute_follows_the_monitor_not_the_config() {
    let _serial = serial();
    let cfg = Cfg {
        wrong_roles: true,
        ..Cfg::default()
    };
    let h = Harness::start(&cfg, false);
    // Before the monitor's first round is in, a connection may be refused, but must never
    // reach the server that the config wrongly calls the primary.
    let early = server_ids(h.proxy.rw_port, 1);
    eprintln!("EARLY rw connection right after start: {early:?}");
    if let Ok(id) = early[0] {
        assert_eq!(
            id, 1,
            "rw reached server_id {id} before the monitor had spoken"
        );
    }
    let took = h.wait("monitor roles", h.started, healthy);
    eprintln!(
        "MONITOR roles known {:.2}s after the proxy listened",
        took.as_secs_f64()
    );

    for _ in 0..3 {
        assert_eq!(
            ok_ids(h.proxy.rw_port, 3, "rw"),
            [1, 1, 1],
            "the primary service must reach server_id 1"
        );
    }
    let ro = ok_ids(h.proxy.ro_port, 4, "ro");
    assert!(
        ro.iter().all(|&id| id == 2 || id == 3),
        "ro must reach the real replicas: {ro:?}"
    );
    assert!(
        ro.contains(&2) && ro.contains(&3),
        "ro should spread: {ro:?}"
    );
}

/// Opens connections through `port` until one lands on the server with `server_id`; the
/// others are closed.
async fn connect_to(port: u16, server_id: u32) -> Conn {
    let mut others = Vec::new();
    for _ in 0..8 {
        let mut c = Conn::new(common::builder(port, APP.0, APP.1))
            .await
            .expect("connect through the proxy");
        let id: Option<u32> = c
            .query_first("SELECT @@server_id")
            .await
            .expect("SELECT @@server_id");
        if id == Some(server_id) {
            for o in others {
                let _ = Conn::disconnect(o).await;
            }
            return c;
        }
        others.push(c);
    }
    panic!("no connection through port {port} reached server_id {server_id}");
}

#[test]
fn maintenance_closes_sessions_once_outside_a_transaction() {
    let _serial = serial();
    let h = Harness::start(&Cfg::default(), true);
    let ro = h.proxy.ro_port;
    block_on(async {
        let mut idle = connect_to(ro, 2).await;
        let mut in_trx = connect_to(ro, 2).await;
        in_trx.query_drop("START TRANSACTION").await.unwrap();
        let _: Option<u32> = in_trx.query_first("SELECT 1").await.unwrap();

        let reply = http(&h.admin, "PUT", "/v1/servers/db2/maintenance").unwrap();
        assert_eq!(reply.status, 204, "{}", reply.body);
        let t0 = Instant::now();

        // The idle session is closed at once, with the reason.
        let err = loop {
            match idle.query_first::<u32, _>("SELECT @@server_id").await {
                Err(e) => break e.to_string(),
                Ok(id) => {
                    assert!(
                        t0.elapsed() < Duration::from_secs(5),
                        "still served by {id:?} after 5s"
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        eprintln!(
            "MAINTENANCE idle session closed after {:.2}s: {err}",
            t0.elapsed().as_secs_f64()
        );

        // The session inside a transaction finishes it on db2, then is closed.
        let id: Option<u32> = in_trx.query_first("SELECT @@server_id").await.unwrap();
        assert_eq!(id, Some(2), "the transaction must stay on its server");
        in_trx.query_drop("COMMIT").await.unwrap();
        let after = in_trx.query_first::<u32, _>("SELECT 1").await;
        assert!(
            after.is_err(),
            "the session should be closed after its transaction: {after:?}"
        );

        let reply = http(&h.admin, "DELETE", "/v1/servers/db2/maintenance").unwrap();
        assert_eq!(reply.status, 204, "{}", reply.body);
    });
}

#[test]
fn two_writable_servers_refuse_writes_with_a_clear_error() {
    let _serial = serial();
    let mut restore = Restore(Vec::new());
    let h = Harness::start(&Cfg::default(), true);
    restore.sql(3, "SET GLOBAL read_only = 1");
    root_sql_ok(3, "SET GLOBAL read_only = 0");
    let t0 = Instant::now();
    let took = h.wait("no primary with db1 and db3 writable", t0, |s| {
        role(s, "db1") != "primary" && role(s, "db3") != "primary"
    });
    transition(
        "db1",
        "no longer primary (db3 writable too)",
        took,
        budget(),
        "SET GLOBAL read_only=0 on db3",
    );
    let monitors = http(&h.admin, "GET", "/v1/monitors").unwrap().json();
    let problems = monitors[0]["state"]["problems"].to_string();
    assert!(
        problems.contains("2 writable servers"),
        "problems: {problems}"
    );

    let refused = server_ids(h.proxy.rw_port, 1);
    let err = refused[0]
        .as_ref()
        .expect_err("a write session must be refused without a primary");
    assert!(
        err.contains("no server with role primary"),
        "unclear error: {err}"
    );
    eprintln!("NO PRIMARY rw refused: {err}");

    root_sql_ok(3, "SET GLOBAL read_only = 1");
    let took = h.wait("db1 primary again", Instant::now(), |s| {
        role(s, "db1") == "primary"
    });
    transition(
        "db1",
        "primary again",
        took,
        budget(),
        "read_only=1 on db3 again",
    );
    assert_eq!(ok_ids(h.proxy.rw_port, 1, "rw after the fix"), vec![1]);
}
