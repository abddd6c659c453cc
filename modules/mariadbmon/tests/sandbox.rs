//! `mariadbmon` against the real sandbox (`scripts/sandbox.sh`: primary 127.0.0.1:3307,
//! replicas 3308 and 3309, account `monitor`/`monitor`), and against servers that refuse or
//! never answer. These tests never stop a server or replication: fault tests elsewhere need the
//! sandbox intact.
//!
//! Environment: `SWITCHYARD_SKIP_SANDBOX=1` skips `scripts/sandbox.sh up` (already running).

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use switchyard_api::{AdminFlag, ClusterState, Monitor, ServerRole};
use switchyard_mariadbmon::{MariaDbMon, MariaDbMonConfig, MonitoredServer};
use tokio::sync::watch;

const USER: &str = "monitor";
const PASSWORD: &str = "monitor";

/// Shows the monitor's log lines in the test output (`--nocapture`).
fn logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "switchyard_mariadbmon=debug".into()),
        )
        .with_test_writer()
        .try_init();
}

fn sandbox() {
    logs();
    static UP: OnceLock<Result<(), String>> = OnceLock::new();
    let result = UP.get_or_init(|| {
        if std::env::var_os("SWITCHYARD_SKIP_SANDBOX").is_some_and(|v| v == "1") {
            return Ok(());
        }
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let out = Command::new("bash")
            .arg(repo.join("scripts/sandbox.sh"))
            .arg("up")
            .current_dir(&repo)
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

fn sandbox_servers() -> Vec<MonitoredServer> {
    vec![
        MonitoredServer::new("db1", "127.0.0.1:3307"),
        MonitoredServer::new("db2", "127.0.0.1:3308"),
        MonitoredServer::new("db3", "127.0.0.1:3309"),
    ]
}

fn fast_config() -> MariaDbMonConfig {
    MariaDbMonConfig {
        interval: Duration::from_millis(200),
        failcount: 2,
        connect_timeout: Duration::from_millis(500),
        read_timeout: Duration::from_millis(500),
    }
}

fn start(servers: Vec<MonitoredServer>, config: MariaDbMonConfig) -> Arc<MariaDbMon> {
    MariaDbMon::start(
        "test",
        servers,
        USER.to_string(),
        PASSWORD.to_string(),
        config,
    )
}

/// Waits until a snapshot satisfies `f`, or panics with the last one.
async fn wait_for(
    rx: &mut watch::Receiver<Arc<ClusterState>>,
    within: Duration,
    what: &str,
    f: impl FnMut(&Arc<ClusterState>) -> bool,
) -> Arc<ClusterState> {
    let result = tokio::time::timeout(within, rx.wait_for(f))
        .await
        .map(|r| r.map(|state| state.clone()));
    match result {
        Ok(Ok(state)) => state,
        Ok(Err(_)) => panic!("the monitor stopped publishing"),
        Err(_) => panic!(
            "{what}: not within {within:?}; last state:\n{:#?}",
            rx.borrow()
        ),
    }
}

fn role(state: &ClusterState, name: &str) -> Option<ServerRole> {
    state.get(name).map(|s| s.role)
}

#[tokio::test]
async fn monitors_the_sandbox() {
    sandbox();
    let mon = start(sandbox_servers(), fast_config());
    let mut rx = mon.subscribe();
    let started = Instant::now();
    let first = wait_for(&mut rx, Duration::from_secs(5), "first round", |s| {
        s.ticks >= 1
    })
    .await;
    eprintln!("first snapshot after {:?}", started.elapsed());

    assert_eq!(
        first.primary.as_ref().map(|p| p.as_str()),
        Some("db1"),
        "{first:#?}"
    );
    assert!(first.problems.is_empty(), "{first:#?}");
    assert_eq!(role(&first, "db1"), Some(ServerRole::Primary));
    assert_eq!(role(&first, "db2"), Some(ServerRole::Replica), "{first:#?}");
    assert_eq!(role(&first, "db3"), Some(ServerRole::Replica), "{first:#?}");
    for (name, id) in [("db1", 1), ("db2", 2), ("db3", 3)] {
        let s = first.get(name).unwrap();
        assert_eq!(s.server_id, Some(id));
        assert!(s.reachable);
        assert!(s.check_time.is_some());
        assert!(
            s.version.as_deref().unwrap_or("").contains("MariaDB"),
            "{s:?}"
        );
        assert!(s.gtid_current_pos.is_some() && s.gtid_binlog_pos.is_some());
        assert_eq!(s.last_error, None, "{s:?}");
    }
    let db1 = first.get("db1").unwrap();
    assert_eq!(db1.read_only, Some(false));
    assert!(db1.replication.is_empty());
    for name in ["db2", "db3"] {
        let s = first.get(name).unwrap();
        assert_eq!(s.read_only, Some(true));
        assert!(!s.replication_broken);
        assert_eq!(s.replication.len(), 1);
        let src = &s.replication[0];
        assert_eq!(
            (src.source_host.as_str(), src.source_port),
            ("127.0.0.1", 3307)
        );
        assert!(src.io_running && src.sql_running);
    }
    // Lag 0 by seconds and by GTID (others may write to the sandbox meanwhile: allow a few
    // rounds for the replicas to catch up).
    let caught_up = wait_for(
        &mut rx,
        Duration::from_secs(10),
        "replicas caught up",
        |s| {
            ["db2", "db3"].iter().all(|n| {
                s.get(n)
                    .is_some_and(|r| r.lag_seconds == Some(0) && r.gtid_behind == Some(0))
            })
        },
    )
    .await;
    assert_eq!(caught_up.primary.as_ref().map(|p| p.as_str()), Some("db1"));

    // Rounds go on at the interval.
    let t0 = Instant::now();
    let ticks0 = rx.borrow().ticks;
    wait_for(&mut rx, Duration::from_secs(5), "five more rounds", |s| {
        s.ticks >= ticks0 + 5
    })
    .await;
    let per_round = t0.elapsed() / 5;
    eprintln!("one round every {per_round:?}");
    assert!(per_round < Duration::from_millis(600), "{per_round:?}");

    // Operator flags: published at once, kept across rounds, never change roles.
    let before = mon.state();
    mon.set_flag("db2", AdminFlag::Maintenance, true).unwrap();
    let now = mon.state();
    assert_eq!(
        now.ticks, before.ticks,
        "published at once, not at the next round"
    );
    assert!(now.get("db2").unwrap().maintenance);
    let later = wait_for(&mut rx, Duration::from_secs(5), "two more rounds", |s| {
        s.ticks >= now.ticks + 2
    })
    .await;
    let db2 = later.get("db2").unwrap();
    assert!(db2.maintenance && !db2.drain);
    assert_eq!(db2.role, ServerRole::Replica);
    mon.set_flag("db2", AdminFlag::Maintenance, false).unwrap();
    assert!(!mon.state().get("db2").unwrap().maintenance);
    let err = mon.set_flag("db9", AdminFlag::Drain, true).unwrap_err();
    assert!(err.contains("db9"), "{err}");

    let diag = mon.diagnostics();
    assert_eq!(diag["module"], "mariadbmon");
    assert_eq!(diag["config"]["interval_ms"], 200);
    assert_eq!(diag["config"]["failcount"], 2);
    assert_eq!(diag["state"]["primary"], "db1");
    assert!(diag["ticks"].as_u64().unwrap() >= 1);
    assert!(
        diag["monitor_connections"][1]["connection_id"]
            .as_u64()
            .is_some(),
        "{diag}"
    );
}

/// Runs one statement as the monitor user on the primary.
async fn as_monitor(sql: &str) {
    use switchyard_protocol::conn::connect_admin;
    use switchyard_protocol::text_query::query;
    let (mut io, info) = connect_admin("127.0.0.1:3307", USER, PASSWORD, Duration::from_secs(5))
        .await
        .expect("monitor login on the primary");
    query(&mut io, info.capabilities, sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

#[tokio::test]
async fn reconnects_when_its_connection_is_killed() {
    sandbox();
    let mon = start(
        vec![MonitoredServer::new("db1", "127.0.0.1:3307")],
        fast_config(),
    );
    let mut rx = mon.subscribe();
    wait_for(&mut rx, Duration::from_secs(5), "first round", |s| {
        s.ticks >= 1
    })
    .await;
    let id = mon.diagnostics()["monitor_connections"][0]["connection_id"]
        .as_u64()
        .expect("an open monitor connection");
    as_monitor(&format!("KILL CONNECTION {id}")).await;
    let killed_at = mon.state().ticks;
    // Every later snapshot keeps db1 reachable: the broken connection is replaced within the
    // same check, not counted as a failure.
    let after = wait_for(&mut rx, Duration::from_secs(5), "three more rounds", |s| {
        let db1 = s.get("db1").unwrap();
        assert!(db1.reachable, "db1 unreachable after the kill: {db1:?}");
        assert_eq!(db1.role, ServerRole::Primary);
        s.ticks >= killed_at + 3
    })
    .await;
    assert_eq!(after.primary.as_ref().map(|p| p.as_str()), Some("db1"));
    let new_id = mon.diagnostics()["monitor_connections"][0]["connection_id"].as_u64();
    assert!(new_id.is_some() && new_id != Some(id), "{new_id:?} vs {id}");
}

#[tokio::test]
async fn refused_server_is_down_after_failcount() {
    sandbox();
    let config = fast_config();
    let mon = start(
        vec![
            MonitoredServer::new("db1", "127.0.0.1:3307"),
            MonitoredServer::new("nowhere", "127.0.0.1:1"),
        ],
        config.clone(),
    );
    let mut rx = mon.subscribe();
    let started = Instant::now();
    let first = wait_for(&mut rx, Duration::from_secs(5), "first round", |s| {
        s.ticks >= 1
    })
    .await;
    let nowhere = first.get("nowhere").unwrap();
    assert_eq!(nowhere.role, ServerRole::Down);
    assert!(!nowhere.reachable);
    assert_eq!(first.primary.as_ref().map(|p| p.as_str()), Some("db1"));
    assert_eq!(
        mon.diagnostics()["monitor_connections"][1]["failed_checks"],
        1
    );
    let down = wait_for(&mut rx, Duration::from_secs(5), "failcount rounds", |s| {
        s.ticks >= 2
    })
    .await;
    let took = started.elapsed();
    let nowhere = down.get("nowhere").unwrap();
    assert_eq!(nowhere.role, ServerRole::Down);
    let error = nowhere.last_error.as_deref().unwrap_or("");
    assert!(error.contains("connection refused"), "{error}");
    assert_eq!(
        mon.diagnostics()["monitor_connections"][1]["failed_checks"],
        2
    );
    eprintln!(
        "refused server down (failcount {}) after {took:?}",
        config.failcount
    );
    assert!(took < config.interval * config.failcount + config.check_deadline());
    // The healthy server is not held up by the dead one.
    assert_eq!(role(&down, "db1"), Some(ServerRole::Primary));
    assert!(down.problems.is_empty(), "{:?}", down.problems);
}

/// Failed checks in a row of server `i`, from the diagnostics.
fn failed_checks(mon: &MariaDbMon, i: usize) -> u64 {
    mon.diagnostics()["monitor_connections"][i]["failed_checks"]
        .as_u64()
        .unwrap_or(0)
}

#[tokio::test]
async fn silent_server_is_down_after_timeouts_and_holds_up_no_one() {
    sandbox();
    // A port that accepts connections and never says a word.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let config = MariaDbMonConfig {
        interval: Duration::from_millis(200),
        failcount: 2,
        connect_timeout: Duration::from_millis(700),
        read_timeout: Duration::from_millis(700),
    };
    let mon = start(
        vec![
            MonitoredServer::new("db1", "127.0.0.1:3307"),
            MonitoredServer::new("silent", &address),
        ],
        config.clone(),
    );
    let mut rx = mon.subscribe();
    let started = Instant::now();
    let first = wait_for(&mut rx, Duration::from_secs(5), "first round", |s| {
        s.ticks >= 1
    })
    .await;
    let first_round = started.elapsed();
    eprintln!("first round published after {first_round:?}");
    // The silent server delays what the others tell by one interval at most (a round waits
    // for its checks that long), not by its timeout.
    assert!(
        first_round < config.interval + Duration::from_millis(400),
        "{first_round:?}"
    );
    assert!(first_round < config.connect_timeout, "{first_round:?}");
    assert_eq!(role(&first, "db1"), Some(ServerRole::Primary));
    assert_eq!(role(&first, "silent"), Some(ServerRole::Down));
    assert_eq!(
        first.get("silent").unwrap().last_error.as_deref(),
        Some("no check has completed yet")
    );
    // Rounds go on at the interval while its check waits out the timeout.
    wait_for(&mut rx, Duration::from_secs(5), "four rounds", |s| {
        s.ticks >= 4
    })
    .await;
    let per_round = started.elapsed() / 4;
    eprintln!("one round every {per_round:?} with a silent server");
    assert!(per_round < config.connect_timeout, "{per_round:?}");

    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = 0;
    while seen < u64::from(config.failcount) {
        assert!(Instant::now() < deadline, "{:#?}", mon.state());
        tokio::time::sleep(Duration::from_millis(10)).await;
        let now = failed_checks(&mon, 1);
        if now != seen {
            eprintln!("{now} failed checks after {:?}", started.elapsed());
            seen = now;
        }
    }
    let took = started.elapsed();
    let state = mon.state();
    let silent = state.get("silent").unwrap();
    assert_eq!(silent.role, ServerRole::Down);
    let error = silent.last_error.as_deref().unwrap_or("");
    assert!(error.starts_with("timed out"), "{error}");
    eprintln!(
        "silent server down after {took:?} ({} failed checks)",
        config.failcount
    );
    // Each failed check waits out connect_timeout; the next starts as soon as a round sees it
    // ended (within an interval), and the last is published by that round.
    assert!(
        took >= config.connect_timeout * config.failcount,
        "{took:?}"
    );
    assert!(
        took < config.connect_timeout * config.failcount
            + config.interval * config.failcount
            + Duration::from_millis(300),
        "{took:?}"
    );
    assert_eq!(role(&state, "db1"), Some(ServerRole::Primary));
    holder.abort();
}

#[tokio::test]
async fn wrong_password_is_a_login_failure() {
    sandbox();
    let mon = MariaDbMon::start(
        "test",
        vec![MonitoredServer::new("db1", "127.0.0.1:3307")],
        USER.to_string(),
        "not the password".to_string(),
        MariaDbMonConfig {
            failcount: 1,
            ..fast_config()
        },
    );
    let mut rx = mon.subscribe();
    let s = wait_for(&mut rx, Duration::from_secs(5), "first round", |s| {
        s.ticks >= 1
    })
    .await;
    let db1 = s.get("db1").unwrap();
    assert_eq!(db1.role, ServerRole::Down);
    let error = db1.last_error.as_deref().unwrap_or("");
    assert!(
        error.starts_with("login refused") && error.contains("1045"),
        "{error}"
    );
}
