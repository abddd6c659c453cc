use super::*;
use std::net::SocketAddr;
use switchyard_protocol::Command;

fn filter(options: serde_json::Value) -> RegexFilter {
    let config: RegexFilterConfig = serde_json::from_value(options).unwrap();
    RegexFilter::new(config).unwrap()
}

fn client(user: &str, addr: &str) -> ClientInfo {
    ClientInfo {
        session_id: switchyard_api::SessionId(1),
        user: user.into(),
        client_addr: addr.parse::<SocketAddr>().unwrap(),
        db: None,
        program: None,
        tls: false,
        service: Arc::from("app"),
        listener: Arc::from("app-rw"),
    }
}

fn rewrite(session: &mut dyn FilterSession, cmd: Command<'_>) -> Option<String> {
    match session.on_command(&mut cmd.into()) {
        Verdict::Rewrite(text) => Some(String::from_utf8(text).unwrap()),
        Verdict::Pass => None,
        other => panic!("unexpected verdict {other:?}"),
    }
}

#[test]
fn replaces_every_match_with_groups() {
    let f = filter(serde_json::json!({"match": r"from\s+old_(\w+)", "replace": "FROM new_$1"}));
    let mut s = f.new_session(&client("app", "127.0.0.1:5000"));
    assert_eq!(
        rewrite(
            &mut *s,
            Command::Query(b"SELECT * FROM old_t JOIN x; select 1 from  old_u")
        ),
        Some("SELECT * FROM new_t JOIN x; select 1 FROM new_u".into())
    );
    assert_eq!(
        rewrite(&mut *s, Command::StmtPrepare(b"SELECT ? FROM old_t")),
        Some("SELECT ? FROM new_t".into())
    );
    assert_eq!(rewrite(&mut *s, Command::Query(b"SELECT 1")), None);
    assert_eq!(rewrite(&mut *s, Command::InitDb(b"old_t")), None);
    let d = f.diagnostics();
    assert_eq!(
        (d["seen"].as_u64(), d["rewritten"].as_u64()),
        (Some(3), Some(2))
    );
}

#[test]
fn case_sensitive_on_request() {
    let f = filter(serde_json::json!({"match": "old", "replace": "new", "ignore_case": false}));
    let mut s = f.new_session(&client("app", "127.0.0.1:5000"));
    assert_eq!(
        rewrite(&mut *s, Command::Query(b"OLD old")),
        Some("OLD new".into())
    );
}

#[test]
fn limited_to_users_and_clients() {
    let f = filter(serde_json::json!({
        "match": "a", "replace": "b", "users": ["app"], "clients": ["10.0.0.0/8"]
    }));
    let cases = [
        ("app", "10.1.1.1:1", true),
        ("app", "192.168.1.1:1", false),
        ("other", "10.1.1.1:1", false),
    ];
    for (user, addr, applies) in cases {
        let mut s = f.new_session(&client(user, addr));
        assert_eq!(
            rewrite(&mut *s, Command::Query(b"a")).is_some(),
            applies,
            "{user} {addr}"
        );
    }
}

#[test]
fn non_utf8_text_is_rewritten_bytewise() {
    let f = filter(serde_json::json!({"match": "t1", "replace": "t2"}));
    let mut s = f.new_session(&client("app", "127.0.0.1:5000"));
    match s.on_command(&mut Command::Query(b"SELECT '\xff' FROM t1").into()) {
        Verdict::Rewrite(text) => assert_eq!(text, b"SELECT '\xff' FROM t2"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_options_are_reported() {
    let config: RegexFilterConfig =
        serde_json::from_value(serde_json::json!({"match": "(", "replace": ""})).unwrap();
    let (key, msg) = config.check().unwrap_err();
    assert_eq!(key, "match");
    assert!(msg.contains("invalid regular expression"), "{msg}");
    let missing = serde_json::from_value::<RegexFilterConfig>(serde_json::json!({"match": "x"}));
    assert!(missing.is_err());
    let bad_client = serde_json::from_value::<RegexFilterConfig>(
        serde_json::json!({"match": "x", "replace": "", "clients": ["nope"]}),
    );
    assert!(bad_client.is_err());
}
