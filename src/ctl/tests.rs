use std::time::{SystemTime, UNIX_EPOCH};

use clap::Parser as _;
use serde_json::json;

use super::client::*;
use super::table::*;
use super::target::*;
use super::*;
use crate::cli::{Cli, Cmd};

fn ctl(args: &[&str]) -> CtlArgs {
    let argv = ["switchyard"].iter().chain(args).copied();
    match Cli::try_parse_from(argv).expect("parses").command {
        Some(Cmd::Ctl(args)) => args,
        other => panic!("not ctl: {other:?}"),
    }
}

fn server(name: &str, role: &str, lag: Value, extra: Value) -> Value {
    let mut s = json!({
        "name": name, "address": format!("127.0.0.1:{}", 3306 + name[2..].parse::<u32>().unwrap()),
        "role": role, "monitor": "repl", "reachable": true, "lag_seconds": lag,
        "gtid_behind": lag, "replication_broken": false, "maintenance": false, "drain": false,
        "connections": 3, "operations": 0, "statements": 1234, "response_time_us": 850,
    });
    for (k, v) in extra.as_object().unwrap() {
        s[k] = v.clone();
    }
    s
}

#[test]
fn servers_table_is_aligned_with_state_flags() {
    let rows = json!([
        server(
            "db1",
            "primary",
            Value::Null,
            json!({ "response_time_us": 1500 })
        ),
        server(
            "db2",
            "replica",
            json!(0),
            json!({ "maintenance": true, "drain": true })
        ),
        server(
            "db3",
            "down",
            Value::Null,
            json!({ "reachable": false, "connections": 0,
            "statements": 7, "response_time_us": 0 })
        ),
    ]);
    let expected = "\
NAME  ADDRESS         ROLE     STATE                 LAG  GTID_BEHIND  CONNS  OPS  STATEMENTS  RESP_TIME
db1   127.0.0.1:3307  primary  up                      -            -      3    0        1234      1.5ms
db2   127.0.0.1:3308  replica  up,maintenance,drain   0s            0      3    0        1234      850us
db3   127.0.0.1:3309  down     down                    -            -      0    0           7          -
";
    assert_eq!(list_table(Kind::Server, &rows), expected);
}

#[test]
fn table_pads_to_the_widest_cell_and_leaves_no_trailing_spaces() {
    const COLUMNS: &[Column] = &[field("A", "a"), number("NUMBER", "n"), field("LAST", "l")];
    let rows = [
        json!({ "a": "long value", "n": 5, "l": "" }),
        json!({ "a": "x", "n": 123456789, "l": "end" }),
    ];
    let out = table(COLUMNS, &rows);
    assert_eq!(
        out,
        "A              NUMBER  LAST\nlong value          5  -\nx           123456789  end\n"
    );
    assert!(out.lines().all(|l| l == l.trim_end()));
    // Widths count characters, not bytes.
    let out = table(COLUMNS, &[json!({ "a": "ünïcødé", "n": 1, "l": "z" })]);
    assert_eq!(out, "A        NUMBER  LAST\nünïcødé       1  z\n");
}

#[test]
fn sessions_table_sorts_by_id_and_lists_backends() {
    let rows = json!([
        { "id": 12, "user": "app", "client": "127.0.0.1:50002", "db": null, "service": "rw",
          "backends": [], "in_transaction": false, "age_seconds": 4000.0 },
        { "id": 3, "user": "app", "client": "127.0.0.1:50001", "db": "test", "service": "rws",
          "backends": [{ "server": "db1", "thread_id": 77 }, { "server": "db2", "thread_id": 8 }],
          "in_transaction": true, "age_seconds": 1.25 },
    ]);
    let expected = "\
ID  USER  CLIENT           DB    SERVICE  BACKENDS        IN_TXN    AGE
 3  app   127.0.0.1:50001  test  rws      db1(77),db2(8)  yes      1.2s
12  app   127.0.0.1:50002  -     rw       -               no      1h06m
";
    assert_eq!(list_table(Kind::Session, &rows), expected);
    assert_eq!(list_table(Kind::Session, &json!([])), "no sessions\n");
}

#[test]
fn services_listeners_monitors_and_filters_tables() {
    let services = json!([{ "name": "app", "router": "readwritesplit", "monitor": "repl",
        "servers": ["db1", "db2"], "filters": [], "listeners": ["app"], "sessions": 2 }]);
    assert_eq!(
        list_table(Kind::Service, &services),
        "NAME  ROUTER          MONITOR  SERVERS  FILTERS  LISTENERS  SESSIONS\n\
         app   readwritesplit  repl     db1,db2  -        app               2\n"
    );
    let listeners = json!([{ "name": "app", "address": "127.0.0.1:4006", "service": "app",
        "state": "stopped", "sessions": 0 }]);
    assert_eq!(
        list_table(Kind::Listener, &listeners),
        "NAME  ADDRESS         SERVICE  STATE    SESSIONS\n\
         app   127.0.0.1:4006  app      stopped         0\n"
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let monitors = json!([{ "name": "repl", "module": "mariadbmon", "servers": ["db1"],
        "state": { "primary": null, "ticks": 42, "updated": now - 2_500,
                   "problems": ["two writable servers"] } }]);
    let out = list_table(Kind::Monitor, &monitors);
    let row = out.lines().nth(1).unwrap();
    assert!(out.starts_with("NAME  MODULE      SERVERS  PRIMARY  TICKS  LAST_CHECK  PROBLEMS\n"));
    assert!(
        row.starts_with(
            "repl  mariadbmon  db1      -           42    2.5s ago  two writable servers"
        ),
        "{row}"
    );
    let filters = json!([
        { "name": "audit", "module": "querylog", "health": "ok",
          "diagnostics": { "topic": "t", "delivered": 10, "dropped": 2, "spill_file": null } },
        { "name": "patch", "module": "regexfilter", "health": "ok", "diagnostics": {} },
    ]);
    assert_eq!(
        list_table(Kind::Filter, &filters),
        "NAME   MODULE       HEALTH  COUNTERS\n\
         audit  querylog     ok      delivered=10 dropped=2\n\
         patch  regexfilter  ok      -\n"
    );
}

#[test]
fn show_prints_name_first_and_nested_values_compactly() {
    let item = json!({
        "module": "querylog", "name": "audit", "health": "ok", "on": true,
        "diagnostics": { "delivered": 3, "spill_file": null, "brokers": "k:9092" },
        "servers": ["db1", "db2"], "empty": [], "nothing": {},
        "rows": [{ "name": "db1", "flags": [1, 2], "note": "" }],
    });
    let expected = "\
name                    audit
diagnostics.brokers     k:9092
diagnostics.delivered   3
diagnostics.spill_file  -
empty                   -
health                  ok
module                  querylog
nothing                 {}
on                      yes
rows[0]                 {flags: [1, 2], name: db1, note: \"\"}
servers                 db1,db2
";
    assert_eq!(key_values(&item), expected);
}

#[test]
fn durations_read_easily() {
    assert_eq!(micros(0), "0us");
    assert_eq!(micros(999), "999us");
    assert_eq!(micros(1_250), "1.2ms");
    assert_eq!(micros(2_500_000), "2.50s");
    assert_eq!(age(0.04), "0.0s");
    assert_eq!(age(59.9), "59.9s");
    assert_eq!(age(192.0), "3m12s");
    assert_eq!(age(7_500.0), "2h05m");
    assert_eq!(age(273_600.0), "3d04h");
}

#[test]
fn target_takes_options_then_environment_then_config() {
    let dir = std::env::temp_dir().join(format!("switchyard-ctl-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("c.yaml");
    std::fs::write(
        &config,
        "admin: { address: '0.0.0.0:9001', user: cu, password: cp }\n",
    )
    .unwrap();
    let no_env = |_: &str| None;
    let no_prompt = |_: &str| None;
    let env = |name: &str| match name {
        USER_ENV => Some("eu".to_string()),
        PASSWORD_ENV => Some("ep".to_string()),
        _ => None,
    };

    let t = Target::resolve(&ctl(&["ctl", "status"]), None, &no_env, &no_prompt).unwrap();
    assert_eq!(
        (t.address.as_str(), t.credentials),
        ("127.0.0.1:8989", None)
    );

    let t = Target::resolve(&ctl(&["ctl", "status"]), Some(&config), &no_env, &no_prompt).unwrap();
    assert_eq!(t.address, "127.0.0.1:9001");
    assert!(t.source.contains("admin.address of"), "{}", t.source);
    assert_eq!(t.credentials, Some(("cu".into(), "cp".into())));

    let t = Target::resolve(&ctl(&["ctl", "status"]), Some(&config), &env, &no_prompt).unwrap();
    assert_eq!(t.credentials, Some(("eu".into(), "ep".into())));

    let args = ctl(&[
        "ctl",
        "--admin",
        "http://[::]:7/",
        "status",
        "--user",
        "ou",
        "--password",
        "op",
    ]);
    let t = Target::resolve(&args, Some(&config), &env, &no_prompt).unwrap();
    assert_eq!(t.address, "[::1]:7");
    assert_eq!(t.credentials, Some(("ou".into(), "op".into())));

    let e = Target::resolve(
        &ctl(&["ctl", "--user", "u", "status"]),
        None,
        &no_env,
        &no_prompt,
    )
    .unwrap_err();
    assert!(e.contains("no password"), "{e}");
    let asked = |user: &str| Some(format!("typed-for-{user}"));
    let t = Target::resolve(
        &ctl(&["ctl", "--user", "u", "status"]),
        None,
        &no_env,
        &asked,
    )
    .unwrap();
    assert_eq!(t.credentials, Some(("u".into(), "typed-for-u".into())));
    let file = dir.join("pw");
    std::fs::write(&file, "from-file\nignored\n").unwrap();
    let args = ctl(&[
        "ctl",
        "--user",
        "u",
        "--password-file",
        file.to_str().unwrap(),
        "status",
    ]);
    let t = Target::resolve(&args, Some(&config), &env, &no_prompt).unwrap();
    assert_eq!(t.credentials, Some(("u".into(), "from-file".into())));
    let e = Target::resolve(
        &ctl(&["ctl", "status"]),
        Some(&dir.join("missing.yaml")),
        &no_env,
        &no_prompt,
    )
    .unwrap_err();
    assert!(e.starts_with("cannot read "), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn command_line_takes_singular_and_plural_kinds_and_json_anywhere() {
    let args = ctl(&["ctl", "list", "server", "--json"]);
    assert!(args.json);
    assert!(matches!(
        args.cmd,
        CtlCmd::List {
            what: Kinds(Kind::Server)
        }
    ));
    let args = ctl(&["ctl", "show", "sessions", "42"]);
    assert!(
        matches!(args.cmd, CtlCmd::Show { what: OneKind(Kind::Session), ref name } if name == "42")
    );
    let args = ctl(&["ctl", "--json", "set", "server", "db2", "drain"]);
    assert!(
        args.json
            && matches!(
                args.cmd,
                CtlCmd::Set {
                    flag: Flag::Drain,
                    ..
                }
            )
    );
    for bad in [
        &["ctl", "list", "tables"][..],
        &["ctl", "set", "server", "db2", "sleepy"],
        &["ctl", "stop", "server", "db2"],
        &["ctl", "show", "server"],
    ] {
        let argv = ["switchyard"].iter().chain(bad).copied();
        assert!(Cli::try_parse_from(argv).is_err(), "{bad:?}");
    }
}

#[test]
fn names_are_one_path_segment() {
    assert_eq!(encode("db-1_a.b~"), "db-1_a.b~");
    assert_eq!(encode("a b/c?"), "a%20b%2Fc%3F");
}
