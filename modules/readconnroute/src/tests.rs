use super::*;
use switchyard_api::ServerStats;
use switchyard_protocol::Command;

fn set(roles: &[(&str, ServerRole)]) -> ServerSet {
    ServerSet {
        servers: roles
            .iter()
            .map(|(name, role)| {
                Arc::new(Server::new(
                    name,
                    "127.0.0.1:1",
                    *role,
                    Arc::new(ServerStats::default()),
                ))
            })
            .collect(),
    }
}

fn router(roles: RoleOptions) -> ReadConnRoute {
    ReadConnRoute::new(ReadConnRouteConfig {
        router_options: roles,
    })
}

fn chosen(r: &ReadConnRoute, s: &ServerSet) -> Option<String> {
    r.choose(s).map(|s| s.name.to_string())
}

#[test]
fn primary_is_found_whatever_the_order() {
    let s = set(&[("db2", ServerRole::Replica), ("db1", ServerRole::Primary)]);
    assert_eq!(
        chosen(&router(RoleOptions::One(RoleOption::Primary)), &s).as_deref(),
        Some("db1")
    );
}

#[test]
fn replicas_are_balanced_by_connections() {
    let s = set(&[
        ("db1", ServerRole::Primary),
        ("db2", ServerRole::Replica),
        ("db3", ServerRole::Replica),
    ]);
    let r = router(RoleOptions::One(RoleOption::Replica));
    s.get("db2").unwrap().stats.connection_opened();
    assert_eq!(chosen(&r, &s).as_deref(), Some("db3"));
    s.get("db3").unwrap().stats.connection_opened();
    s.get("db3").unwrap().stats.connection_opened();
    assert_eq!(chosen(&r, &s).as_deref(), Some("db2"));
}

#[test]
fn replica_falls_back_to_primary_but_primary_does_not_fall_back() {
    let s = set(&[("db1", ServerRole::Primary), ("db2", ServerRole::Down)]);
    assert_eq!(
        chosen(&router(RoleOptions::One(RoleOption::Replica)), &s).as_deref(),
        Some("db1")
    );
    let s = set(&[("db1", ServerRole::Down), ("db2", ServerRole::Replica)]);
    let r = router(RoleOptions::One(RoleOption::Primary));
    assert_eq!(chosen(&r, &s), None);
    let mut session = r.new_session(&SessionInfo {
        id: switchyard_api::SessionId(1),
        user: "app".into(),
        client_addr: "127.0.0.1:5".parse().unwrap(),
        db: None,
    });
    match session.connect(&s).target {
        RouteTarget::Close(e) => {
            assert_eq!(e.message, "no server with role primary is available")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn running_takes_any_live_server_and_lists_combine() {
    let s = set(&[("db1", ServerRole::Down), ("db2", ServerRole::Running)]);
    assert_eq!(
        chosen(&router(RoleOptions::One(RoleOption::Running)), &s).as_deref(),
        Some("db2")
    );
    let s = set(&[("db1", ServerRole::Primary), ("db2", ServerRole::Replica)]);
    s.get("db1").unwrap().stats.connection_opened();
    let r = router(RoleOptions::Many(vec![
        RoleOption::Primary,
        RoleOption::Replica,
    ]));
    assert_eq!(chosen(&r, &s).as_deref(), Some("db2"));
}

#[test]
fn session_sticks_to_its_server() {
    let s = set(&[("db1", ServerRole::Primary)]);
    let r = router(RoleOptions::One(RoleOption::Primary));
    let info = SessionInfo {
        id: switchyard_api::SessionId(1),
        user: "u".into(),
        client_addr: "127.0.0.1:5".parse().unwrap(),
        db: None,
    };
    let mut session = r.new_session(&info);
    let first = session.connect(&s);
    let next = session.plan(&mut Command::Query(b"SELECT 1").into(), &s);
    match (first.target, next.target) {
        (RouteTarget::Server(a), RouteTarget::Server(b)) => assert!(Arc::ptr_eq(&a, &b)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn maintenance_and_drain_take_no_new_sessions() {
    let mut s = set(&[
        ("db1", ServerRole::Primary),
        ("db2", ServerRole::Replica),
        ("db3", ServerRole::Replica),
    ]);
    let r = router(RoleOptions::One(RoleOption::Replica));
    Arc::get_mut(&mut s.servers[1]).unwrap().maintenance = true;
    assert_eq!(chosen(&r, &s).as_deref(), Some("db3"));
    Arc::get_mut(&mut s.servers[2]).unwrap().drain = true;
    assert_eq!(chosen(&r, &s).as_deref(), Some("db1"));
}
