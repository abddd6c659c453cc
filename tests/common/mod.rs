//! Shared helpers of the integration tests: the MariaDB sandbox, a Switchyard process on free
//! ports, and connection options for the proxy and for the backends directly.
//!
//! Environment:
//! - `SWITCHYARD_SKIP_SANDBOX=1`: do not run `scripts/sandbox.sh up` (it is already running).
#![allow(dead_code)]

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mysql_async::{Opts, OptsBuilder};

pub const HOST: &str = "127.0.0.1";
pub const PRIMARY_PORT: u16 = 3307;
pub const REPLICA_PORTS: [u16; 2] = [3308, 3309];
/// `@@server_id` of the sandbox servers, by port.
pub const SERVER_IDS: [(u16, u32); 3] = [(3307, 1), (3308, 2), (3309, 3)];
pub const APP: (&str, &str) = ("app", "app");
pub const LIMITED: (&str, &str) = ("limited", "limited");

/// The repository root.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Brings the sandbox up once per test binary (`scripts/sandbox.sh up` is idempotent).
pub fn sandbox() {
    static UP: OnceLock<Result<(), String>> = OnceLock::new();
    let result = UP.get_or_init(|| {
        if std::env::var_os("SWITCHYARD_SKIP_SANDBOX").is_some_and(|v| v == "1") {
            return Ok(());
        }
        let out = Command::new("bash")
            .arg(repo().join("scripts/sandbox.sh"))
            .arg("up")
            .current_dir(repo())
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run scripts/sandbox.sh: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "scripts/sandbox.sh up failed ({}):\n{}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind((HOST, 0))
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// A unique, SQL-safe name (for databases, tables, users) made by one test.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}_{}_{}_{:x}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

/// A fresh temporary directory (kept when a test fails, for its logs).
pub fn temp_dir(prefix: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique(prefix));
    fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// The path of the switchyard binary built for these tests.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_switchyard")
}

/// Options for a connection straight to a backend server (no proxy).
pub fn backend_opts(port: u16, user: &str, password: &str) -> Opts {
    builder(port, user, password).into()
}

/// Options for a connection straight to the primary as `app`.
pub fn primary_opts() -> Opts {
    backend_opts(PRIMARY_PORT, APP.0, APP.1)
}

/// Options for a connection straight to the primary as `app`, with a default database.
pub fn primary_opts_db(db: &str) -> Opts {
    builder(PRIMARY_PORT, APP.0, APP.1).db_name(Some(db)).into()
}

/// The common builder: TCP only (mysql_async would otherwise switch to the unix socket that
/// `@@socket` names, which is the backend's, bypassing the proxy).
pub fn builder(port: u16, user: &str, password: &str) -> OptsBuilder {
    OptsBuilder::default()
        .ip_or_hostname(HOST)
        .tcp_port(port)
        .user(Some(user))
        .pass(Some(password))
        .prefer_socket(false)
}

/// The default test config: `rw` (readconnroute to the primary) and `ro` (to the replicas).
pub fn default_config(rw: u16, ro: u16) -> String {
    format!(
        r#"log: {{ level: "info,switchyard=debug" }}
servers:
  - {{ name: db1, address: 127.0.0.1:3307, role: primary }}
  - {{ name: db2, address: 127.0.0.1:3308, role: replica }}
  - {{ name: db3, address: 127.0.0.1:3309, role: replica }}
services:
  - {{ name: rw, router: readconnroute, servers: [db1, db2, db3], user: switchyard, password: switchyard, options: {{ router_options: primary }} }}
  - {{ name: ro, router: readconnroute, servers: [db1, db2, db3], user: switchyard, password: switchyard, options: {{ router_options: replica }} }}
listeners:
  - {{ name: rw, service: rw, address: 127.0.0.1:{rw} }}
  - {{ name: ro, service: ro, address: 127.0.0.1:{ro} }}
"#
    )
}

/// A running Switchyard process; killed on drop. When the test is failing (panicking), the
/// tail of the proxy's log is printed.
pub struct Proxy {
    child: Child,
    pub rw_port: u16,
    pub ro_port: u16,
    pub dir: PathBuf,
    pub log_path: PathBuf,
    pub config_path: PathBuf,
}

impl Proxy {
    /// Brings the sandbox up and starts the proxy with [`default_config`] on free ports.
    pub fn start() -> Proxy {
        sandbox();
        // Ports can be taken between the probe and the proxy's bind: retry a few times.
        let mut last = String::new();
        for _ in 0..3 {
            let (rw, ro) = (free_port(), free_port());
            if rw == ro {
                continue;
            }
            match Proxy::spawn(&default_config(rw, ro), &[rw, ro]) {
                Ok(mut p) => {
                    p.rw_port = rw;
                    p.ro_port = ro;
                    return p;
                }
                Err(e) => last = e,
            }
        }
        panic!("the proxy did not start: {last}");
    }

    /// Starts the proxy with `config` and waits until every port in `ports` accepts.
    pub fn spawn(config: &str, ports: &[u16]) -> Result<Proxy, String> {
        let dir = temp_dir("switchyard-test");
        let config_path = dir.join("switchyard.yaml");
        let log_path = dir.join("switchyard.log");
        fs::write(&config_path, config).map_err(|e| e.to_string())?;
        let log = fs::File::create(&log_path).map_err(|e| e.to_string())?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(binary())
            .arg("-c")
            .arg(&config_path)
            .current_dir(repo())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary()))?;
        let mut proxy = Proxy {
            child,
            rw_port: ports.first().copied().unwrap_or(0),
            ro_port: ports.get(1).copied().unwrap_or(0),
            dir,
            log_path,
            config_path,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        for &port in ports {
            loop {
                if let Ok(Some(status)) = proxy.child.try_wait() {
                    return Err(format!(
                        "the proxy exited with {status} before listening; log:\n{}",
                        proxy.log()
                    ));
                }
                let addr = SocketAddr::from(([127, 0, 0, 1], port));
                if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(format!(
                        "the proxy did not listen on {port} within 30s; log:\n{}",
                        proxy.log()
                    ));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(proxy)
    }

    pub fn rw_addr(&self) -> String {
        format!("{HOST}:{}", self.rw_port)
    }

    pub fn ro_addr(&self) -> String {
        format!("{HOST}:{}", self.ro_port)
    }

    /// Options for a connection through the `rw` listener.
    pub fn opts(&self, user: &str, password: &str) -> Opts {
        builder(self.rw_port, user, password).into()
    }

    /// Options for `app` through the `rw` listener.
    pub fn app_opts(&self) -> Opts {
        self.opts(APP.0, APP.1)
    }

    /// Options for `app` through the `rw` listener with a default database.
    pub fn app_opts_db(&self, db: &str) -> Opts {
        builder(self.rw_port, APP.0, APP.1).db_name(Some(db)).into()
    }

    /// Options for `app` through the `ro` listener.
    pub fn ro_opts(&self) -> Opts {
        builder(self.ro_port, APP.0, APP.1).into()
    }

    /// The proxy's log so far.
    pub fn log(&self) -> String {
        fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// The last `max` bytes of the log.
    pub fn log_tail(&self, max: u64) -> String {
        let Ok(mut f) = fs::File::open(&self.log_path) else {
            return String::new();
        };
        let len = f.metadata().map_or(0, |m| m.len());
        let _ = f.seek(SeekFrom::Start(len.saturating_sub(max)));
        let mut buf = Vec::new();
        let _ = f.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// Panics (with the log) when the proxy process has exited.
    pub fn assert_alive(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "the proxy exited unexpectedly with {status}; log tail:\n{}",
                self.log_tail(16 * 1024)
            );
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "---- switchyard log tail ({}) ----\n{}\n---- end of switchyard log ----",
                self.log_path.display(),
                self.log_tail(16 * 1024)
            );
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Runs `switchyard` with `args` to completion and returns (exit code, stdout, stderr).
pub fn run_switchyard(args: &[&str], timeout: Duration) -> (Option<i32>, String, String) {
    let dir = temp_dir("switchyard-run");
    let out_path = dir.join("stdout");
    let err_path = dir.join("stderr");
    let mut child = Command::new(binary())
        .args(args)
        .current_dir(repo())
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out_path).expect("stdout file"))
        .stderr(fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .expect("start switchyard");
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for switchyard") {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = fs::read_to_string(&out_path).unwrap_or_default();
    let err = fs::read_to_string(&err_path).unwrap_or_default();
    let _ = fs::remove_dir_all(&dir);
    (status.and_then(|s| s.code()), out, err)
}
