use std::time::Duration;

use serde::Deserialize;

use super::validate::parse_host_port;
use super::*;

/// The lines joined, so that a test's line numbers are its indices + 1.
fn yaml(lines: &[&str]) -> String {
    lines.join("\n") + "\n"
}

/// Every error of `text`, displayed (with origin `test.yaml`).
fn errors(text: &str) -> Vec<String> {
    match parse(text, "test.yaml") {
        Ok(config) => panic!("expected errors, got {config:#?}"),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

/// A valid config around the given service options.
fn with_options(options: &str) -> String {
    yaml(&[
        "servers:",
        "  - { name: db1, address: 127.0.0.1:3307 }",
        "services:",
        "  - name: app",
        "    router: readconnroute",
        "    servers: [db1]",
        "    user: u",
        "    password: p",
        options,
        "listeners:",
        "  - { name: app, service: app, address: 127.0.0.1:4006 }",
    ])
}

/// The kind of options type the runtime defines for readconnroute.
#[derive(Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouterOptions {
    router_options: OneOrMany,
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(Role),
    Many(Vec<Role>),
}

#[test]
fn sandbox_parses() {
    let config = parse(SANDBOX, SANDBOX_ORIGIN).unwrap();
    let servers: Vec<_> = config
        .servers
        .iter()
        .map(|s| (s.name.as_str(), s.address.as_str(), s.role))
        .collect();
    assert_eq!(
        servers,
        [
            ("db1", "127.0.0.1:3307", Role::Running),
            ("db2", "127.0.0.1:3308", Role::Running),
            ("db3", "127.0.0.1:3309", Role::Running),
        ]
    );
    assert_eq!(config.monitors.len(), 1);
    let monitor = &config.monitors[0];
    assert_eq!(
        (monitor.name.as_str(), monitor.module.as_str()),
        ("repl", "mariadbmon")
    );
    assert_eq!(monitor.servers, ["db1", "db2", "db3"]);
    assert_eq!(
        config.admin.as_ref().map(|a| a.address.as_str()),
        Some("127.0.0.1:8989")
    );
    assert_eq!(config.services.len(), 3);
    assert_eq!(
        (
            config.services[0].name.as_str(),
            config.services[0].router.as_str()
        ),
        ("app", "readwritesplit")
    );
    for (service, name, role) in [
        (&config.services[1], "app-primary", Role::Primary),
        (&config.services[2], "app-ro", Role::Replica),
    ] {
        assert_eq!(service.name, name);
        assert_eq!(service.router, "readconnroute");
        assert_eq!(service.servers, ["db1", "db2", "db3"]);
        assert_eq!(service.monitor.as_deref(), Some("repl"));
        assert_eq!(
            (service.user.as_str(), service.password.as_str()),
            ("switchyard", "switchyard")
        );
        let options: RouterOptions = service.options.parse().unwrap();
        assert_eq!(options.router_options, OneOrMany::One(role));
    }
    let listeners: Vec<_> = config
        .listeners
        .iter()
        .map(|l| (l.name.as_str(), l.service.as_str(), l.address.as_str()))
        .collect();
    assert_eq!(
        listeners,
        [
            ("app", "app", "127.0.0.1:4006"),
            ("app-primary", "app-primary", "127.0.0.1:4007"),
            ("app-ro", "app-ro", "127.0.0.1:4008")
        ]
    );
    assert_eq!(config.origin(), SANDBOX_ORIGIN);
}

#[test]
fn example_parses_and_shows_the_defaults() {
    let text = include_str!("../../config/example.yaml");
    let config = parse(text, "example.yaml").unwrap();
    let service = &config.services[0];
    assert_eq!(config.threads, None);
    assert_eq!(config.log, LogConfig::default());
    assert_eq!(config.drain_timeout, default_drain_timeout());
    assert_eq!(
        service.users_refresh_interval,
        default_users_refresh_interval()
    );
    assert_eq!(service.connect_timeout, default_connect_timeout());
    assert_eq!(service.max_connections, 1000);
    assert_eq!(config.servers[2].role, default_role());
    // The router checks its own options (tests/config_check.rs runs `switchyard check` on it).
    assert_eq!(service.router, "readwritesplit");
    assert!(!service.options.is_empty());
}

#[test]
fn defaults() {
    let config = parse(&with_options(""), "test.yaml").unwrap();
    assert_eq!(config.threads, None);
    assert_eq!(config.log.format, LogFormat::Text);
    assert_eq!(config.log.level, "info");
    assert_eq!(config.servers[0].role, Role::Running);
    let service = &config.services[0];
    assert!(service.options.is_empty());
    assert_eq!(service.users_refresh_interval, Duration::from_secs(1));
    assert_eq!(service.connect_timeout, Duration::from_secs(3));
    assert_eq!(service.max_connections, 1000);
}

#[test]
fn every_field_set() {
    let text = yaml(&[
        "threads: 4",
        "log: { format: json, level: 'info,switchyard=debug' }",
        "servers:",
        "  - { name: db1, address: '[::1]:3307', role: primary }",
        "  - { name: db2, address: db2.example.com:3306, role: replica }",
        "services:",
        "  - name: app",
        "    router: readconnroute",
        "    servers: [db1, db2]",
        "    user: switchyard",
        "    password: 12345",
        "    options: { router_options: [replica, running] }",
        "    users_refresh_interval: 500ms",
        "    connect_timeout: 2m",
        "    max_connections: 100",
        "listeners:",
        "  - { name: app, service: app, address: '0.0.0.0:4006' }",
    ]);
    let config = parse(&text, "test.yaml").unwrap();
    assert_eq!(config.threads, Some(4));
    assert_eq!(config.log.format, LogFormat::Json);
    assert_eq!(config.log.level, "info,switchyard=debug");
    let service = &config.services[0];
    // A plain number is a string where a string is wanted.
    assert_eq!(service.password, "12345");
    assert_eq!(service.users_refresh_interval, Duration::from_millis(500));
    assert_eq!(service.connect_timeout, Duration::from_secs(120));
    assert_eq!(service.max_connections, 100);
    let options: RouterOptions = service.options.parse().unwrap();
    assert_eq!(
        options.router_options,
        OneOrMany::Many(vec![Role::Replica, Role::Running])
    );
    assert_eq!(config.server("db2").unwrap().role, Role::Replica);
    assert_eq!(config.service("app").unwrap().servers, ["db1", "db2"]);
}

#[test]
fn syntax_error_is_located() {
    let text = yaml(&[
        "servers:",
        "  - { name: db1, address: 127.0.0.1:3307",
        "services: []",
    ]);
    let errors = errors(&text);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("test.yaml:3:") && errors[0].contains("YAML syntax error"),
        "{errors:?}"
    );
}

#[test]
fn unknown_key_points_at_the_key() {
    let text = with_options("    optoins: {}").replace(
        "{ name: db1, address: 127.0.0.1:3307 }",
        "{ name: db1, adress: 127.0.0.1:3307 }",
    );
    assert_eq!(
        errors(&text),
        [
            "test.yaml:2:18: servers[0]: unknown field `adress`, expected one of `name`, `address`, `role`",
            "test.yaml:9:5: services[0]: unknown field `optoins`, expected one of `name`, `router`, \
             `servers`, `user`, `password`, `options`, `users_refresh_interval`, \
             `connect_timeout`, `max_connections`, `max_pending_logins`, \
             `max_pending_logins_per_host`, `monitor`, `filters`",
        ]
    );
}

#[test]
fn bad_values_point_at_the_value() {
    let text = yaml(&[
        "threads: many",
        "log: { format: xml }",
        "servers:",
        "  - { name: db1, address: 127.0.0.1:3307, role: boss }",
        "services:",
        "  - name: app",
        "    router: readconnroute",
        "    servers: db1",
        "    user: u",
        "    password: p",
        "    connect_timeout: 3",
        "    users_refresh_interval: 1x",
        "    max_connections: -1",
        "listeners:",
        "  - { name: [app], service: app, address: 127.0.0.1:4006 }",
    ]);
    let errors = errors(&text);
    let expected = [
        "test.yaml:1:10: threads: expected a whole number (0 or more), found 'many'",
        "test.yaml:2:16: log.format: unknown variant `xml`, expected `text` or `json`",
        "test.yaml:4:49: servers[0].role: unknown variant `boss`, expected one of `primary`, `replica`, `running`",
        "test.yaml:8:14: services[0].servers: expected a list, found 'db1'",
        "test.yaml:11:22: services[0].connect_timeout: invalid duration `3`: time unit needed, \
         for example 3sec or 3ms; write it like `500ms`, `1s` or `2m`",
        "test.yaml:12:29: services[0].users_refresh_interval: invalid duration `1x`: unknown time unit \"x\", \
         supported units: ns, us/µs, ms, sec, min, hours, days, weeks, months, years (and few variations); \
         write it like `500ms`, `1s` or `2m`",
        "test.yaml:13:22: services[0].max_connections: expected a whole number from 0 to 4294967295, found -1",
        "test.yaml:15:13: listeners[0].name: expected a string, found a list",
    ];
    assert_eq!(errors, expected);
}

#[test]
fn missing_field_points_at_the_enclosing_map() {
    let text = yaml(&[
        "servers:",
        "  - { name: db1 }",
        "services:",
        "  - name: app",
        "    servers: [db1]",
        "    user: u",
        "    password: p",
        "listeners:",
        "  - { name: app, service: app, address: 127.0.0.1:4006 }",
    ]);
    assert_eq!(
        errors(&text),
        [
            "test.yaml:2:5: servers[0]: missing field `address`",
            "test.yaml:4:5: services[0]: missing field `router`",
        ]
    );
}

#[test]
fn a_misspelled_key_is_not_also_reported_missing() {
    let text = with_options("").replace("address: 127.0.0.1:3307", "adress: 127.0.0.1:3307");
    let errors = errors(&text);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("unknown field `adress`"));
}

#[test]
fn independent_errors_are_all_reported() {
    let text = yaml(&[
        "servers:",
        "  - { name: db1, address: 127.0.0.1:3307, weight: 3 }",
        "  - { name: db2, address: 127.0.0.1:3308 }",
        "  - { name: db3, address: 127.0.0.1 }",
        "services:",
        "  - { name: app, router: readconnroute, servers: [db1, db2, db3], user: u, password: p }",
        "listeners:",
        "  - { name: app, service: app, address: 127.0.0.1:4006 }",
        "  - { name: ro, service: app-ro, address: 127.0.0.1:4008 }",
    ]);
    assert_eq!(
        errors(&text),
        [
            "test.yaml:2:43: servers[0]: unknown field `weight`, expected one of `name`, `address`, `role`",
            "test.yaml:4:27: servers[2].address: invalid address '127.0.0.1': missing `:port`; \
             expected host:port, like 127.0.0.1:3306",
            "test.yaml:9:26: listeners[1].service: unknown service 'app-ro' (known: app)",
        ]
    );
}

#[test]
fn references_and_names() {
    let text = yaml(&[
        "servers:",
        "  - { name: db1, address: 127.0.0.1:3307 }",
        "  - { name: db2, address: 127.0.0.1:3308 }",
        "  - { name: db3, address: 127.0.0.1:3309 }",
        "  - { name: db1, address: 127.0.0.1:3310 }",
        "services:",
        "  - { name: app, router: readconnroute, servers: [db1, db9, db1], user: u, password: p }",
        "  - { name: ro, router: readconnroute, servers: [], user: u, password: p }",
        "  - { name: app, router: readconnroute, servers: [db2], user: '', password: p }",
        "listeners:",
        "  - { name: app, service: app, address: 0.0.0.0:4006 }",
        "  - { name: app, service: nope, address: 127.0.0.1:4006 }",
    ]);
    assert_eq!(
        errors(&text),
        [
            "test.yaml:5:13: servers[3].name: duplicate server name 'db1' (first defined at line 2, column 13)",
            "test.yaml:7:56: services[0].servers[1]: unknown server 'db9' (known: db1, db2, db3)",
            "test.yaml:7:61: services[0].servers[2]: server 'db1' is listed twice",
            "test.yaml:8:49: services[1].servers: a service needs at least one server",
            "test.yaml:9:13: services[2].name: duplicate service name 'app' (first defined at line 7, column 13)",
            "test.yaml:9:63: services[2].user: must not be empty",
            "test.yaml:12:13: listeners[1].name: duplicate listener name 'app' (first defined at line 11, column 13)",
            "test.yaml:12:27: listeners[1].service: unknown service 'nope' (known: app, ro)",
            "test.yaml:12:42: listeners[1].address: address '127.0.0.1:4006' is already used by listener 'app' (line 11)",
        ]
    );
}

#[test]
fn limits() {
    let text = yaml(&[
        "threads: 0",
        "log: { level: verbose }",
        "servers:",
        "  - { name: db1, address: 127.0.0.1:3307 }",
        "services:",
        "  - { name: app, router: r, servers: [db1], user: u, password: p, connect_timeout: 0s, max_connections: 0 }",
        "listeners: []",
    ]);
    assert_eq!(
        errors(&text),
        [
            "test.yaml:1:10: threads: must be at least 1 (leave it out for one thread per core)",
            "test.yaml:2:15: log.level: unknown log level 'verbose': use trace, debug, info, warn, error or off, \
             or a directive like `info,switchyard=debug`",
            "test.yaml:6:84: services[0].connect_timeout: must be greater than zero",
            "test.yaml:6:105: services[0].max_connections: must be at least 1",
            "test.yaml:7:12: listeners: at least one listener is required",
        ]
    );
}

#[test]
fn empty_document_needs_every_section() {
    assert_eq!(
        errors("# nothing yet\n"),
        [
            "test.yaml:1:1: no servers are defined: add a `servers` list with at least one server",
            "test.yaml:1:1: no services are defined: add a `services` list with at least one service",
            "test.yaml:1:1: no listeners are defined: add a `listeners` list with at least one listener",
        ]
    );
}

#[test]
fn root_must_be_a_map() {
    assert_eq!(
        errors("- a\n- b\n"),
        ["test.yaml:1:1: expected a map, found a list"]
    );
}

#[test]
fn duplicate_keys_and_documents() {
    let text = with_options("    user: again");
    assert_eq!(
        errors(&text),
        ["test.yaml:9:5: services[0]: duplicate key `user` (first at line 7, column 5)"]
    );
    let text = with_options("") + "---\nthreads: 2\n";
    let errors = errors(&text);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("test.yaml:12:1: a configuration file holds a single YAML document")
    );
}

#[test]
fn anchors_and_aliases() {
    let text = yaml(&[
        "servers:",
        "  - { name: db1, address: 127.0.0.1:3307 }",
        "  - { name: db2, address: 127.0.0.1:3308 }",
        "services:",
        "  - { name: app, router: readconnroute, servers: &all [db1, db2], user: u, password: p }",
        "  - { name: ro, router: readconnroute, servers: *all, user: u, password: p }",
        "listeners:",
        "  - { name: app, service: app, address: 127.0.0.1:4006 }",
    ]);
    let config = parse(&text, "test.yaml").unwrap();
    assert_eq!(config.services[1].servers, ["db1", "db2"]);
}

#[test]
fn module_options_report_located_errors() {
    let text = with_options("    options: { router_options: primary, weight: 2 }");
    let config = parse(&text, "test.yaml").unwrap();
    let error = config.services[0]
        .options
        .parse::<RouterOptions>()
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "test.yaml:9:41: services[0].options: unknown field `weight`, expected `router_options`"
    );
    assert_eq!((error.line, error.column), (9, 41));
    assert_eq!(error.path, "services[0].options");

    let text = with_options("    options:\n      router_options: [primary, leader]");
    let config = parse(&text, "test.yaml").unwrap();
    let error = config.services[0]
        .options
        .parse::<RouterOptions>()
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "test.yaml:10:23: services[0].options.router_options: \
         data did not match any variant of untagged enum OneOrMany"
    );

    // Left out: a missing option is reported at the service.
    let config = parse(&with_options(""), "test.yaml").unwrap();
    let error = config.services[0]
        .options
        .parse::<RouterOptions>()
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "test.yaml:4:5: services[0].options: missing field `router_options`"
    );
}

#[test]
fn module_options_can_report_every_error() {
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Options {
        #[serde(default)]
        lag: u32,
        #[serde(default)]
        causal: bool,
    }
    let text = with_options("    options: { lag: many, causal: sure, colour: red }");
    let config = parse(&text, "test.yaml").unwrap();
    let errors = config.services[0]
        .options
        .parse_all::<Options>()
        .unwrap_err();
    let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        errors,
        [
            "test.yaml:9:21: services[0].options.lag: expected a whole number from 0 to 4294967295, found 'many'",
            "test.yaml:9:35: services[0].options.causal: expected a boolean, found 'sure'",
            "test.yaml:9:41: services[0].options: unknown field `colour`, expected `lag` or `causal`",
        ]
    );
    let options = &config.services[0].options;
    assert_eq!(
        options.error_at("lag", "too much").to_string(),
        "test.yaml:9:21: services[0].options.lag: too much"
    );
}

#[test]
fn runtime_errors_are_located_by_path() {
    let config = parse(SANDBOX, SANDBOX_ORIGIN).unwrap();
    let mut errors = ConfigErrors::new();
    errors.push(config.error_at("services[2].router", "unknown router 'readconnroute'"));
    errors.push(config.services[2].error_at("nothing", "falls back to the service"));
    let shown = errors.to_string();
    let lines: Vec<&str> = shown.lines().collect();
    let router_line = SANDBOX
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains("router: readconnroute"))
        .nth(1)
        .map(|(i, _)| i + 1)
        .unwrap();
    let service_line = SANDBOX
        .lines()
        .position(|l| l.contains("name: app-ro"))
        .unwrap()
        + 1;
    assert_eq!(
        lines,
        [
            format!("<embedded sandbox.yaml>:{router_line}:13: services[2].router: unknown router 'readconnroute'"),
            format!("<embedded sandbox.yaml>:{service_line}:5: services[2].nothing: falls back to the service"),
        ]
    );
}

#[test]
fn load_reports_unreadable_files() {
    let errors = load(
        std::path::Path::new("/nonexistent/switchyard.yaml"),
        &|_| ConfigErrors::new(),
    )
    .unwrap_err();
    assert_eq!(errors.len(), 1);
    assert!(errors
        .to_string()
        .starts_with("/nonexistent/switchyard.yaml: cannot read the file:"));
}

#[test]
fn addresses() {
    for (address, expected) in [
        ("127.0.0.1:3306", Ok(("127.0.0.1", 3306))),
        ("DB1.example.com:3306", Ok(("db1.example.com", 3306))),
        ("[::1]:3306", Ok(("::1", 3306))),
        ("db_1:65535", Ok(("db_1", 65535))),
        ("127.0.0.1", Err("missing `:port`")),
        ("127.0.0.1:", Err("missing port")),
        ("127.0.0.1:0", Err("port 0 is out of range 1-65535")),
        ("127.0.0.1:65536", Err("port 65536 is out of range 1-65535")),
        ("127.0.0.1:ab", Err("'ab' is not a port number")),
        (":3306", Err("missing host")),
        (
            "300.0.0.1:3306",
            Err("'300.0.0.1' is not a valid IPv4 address"),
        ),
        (
            "::1:3306",
            Err("an IPv6 address goes in brackets, like [::1]:3306"),
        ),
        ("[::g]:3306", Err("'::g' is not an IPv6 address")),
        ("-db:3306", Err("'-db' is not a valid host name")),
        ("db 1:3306", Err("it contains spaces")),
        ("", Err("it is empty")),
    ] {
        let got = parse_host_port(address);
        let expected = expected
            .map(|(host, port)| (host.to_string(), port))
            .map_err(str::to_string);
        assert_eq!(got, expected, "{address}");
    }
}

#[test]
fn passwords_stay_out_of_debug_output() {
    let config = parse(SANDBOX, SANDBOX_ORIGIN).unwrap();
    let shown = format!("{config:?}");
    assert!(!shown.contains("password: \"switchyard\""), "{shown}");
    assert!(shown.contains("router_options: primary"), "{shown}");
}

#[test]
fn equality_ignores_where_things_were_written() {
    let a = parse(
        &with_options("    options: { router_options: primary }"),
        "a.yaml",
    )
    .unwrap();
    let b = parse(
        &("\n\n".to_string() + &with_options("    options:\n      router_options: primary")),
        "b.yaml",
    )
    .unwrap();
    assert_eq!(a, b);
    let c = parse(
        &with_options("    options: { router_options: replica }"),
        "a.yaml",
    )
    .unwrap();
    assert_ne!(a, c);
}

#[test]
fn error_count_is_bounded() {
    let mut lines = vec!["servers:".to_string()];
    for i in 0..150 {
        lines.push(format!(
            "  - {{ name: db{i}, address: 127.0.0.1:3307, x: 1 }}"
        ));
    }
    let errors = errors(&(lines.join("\n") + "\n"));
    assert!(errors.len() <= 110, "{}", errors.len());
    assert!(errors.contains(
        &"test.yaml:1:1: too many errors; the rest of the file was not checked".to_string()
    ));
}

/// A regexfilter's options, as the module defines them.
#[derive(Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchOptions {
    #[serde(rename = "match")]
    pattern: String,
    replace: String,
}

#[test]
fn filters_keep_their_options_beside_name_and_module() {
    let text = yaml(&[
        "servers:",
        "  - { name: db1, address: 127.0.0.1:3307 }",
        "filters:",
        "  - { name: patch, module: regexfilter, match: 'FROM t1', replace: FROM t2 }",
        "  - name: typo",
        "    module: regexfilter",
        "    match: x",
        "    replcae: y",
        "services:",
        "  - { name: app, router: readconnroute, servers: [db1], user: u, password: p, filters: [patch, typo] }",
        "listeners:",
        "  - { name: app, service: app, address: 127.0.0.1:4006 }",
    ]);
    let config = parse(&text, "test.yaml").unwrap();
    assert_eq!(config.services[0].filters, ["patch", "typo"]);
    let patch = &config.filters[0];
    assert_eq!(
        (patch.name.as_str(), patch.module.as_str()),
        ("patch", "regexfilter")
    );
    assert_eq!(
        patch.options.parse::<PatchOptions>().unwrap(),
        PatchOptions {
            pattern: "FROM t1".into(),
            replace: "FROM t2".into()
        }
    );
    let e = config.filters[1]
        .options
        .parse::<PatchOptions>()
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("test.yaml:8:5: filters[1]: unknown field `replcae`"),
        "{e}"
    );
    let e = config.filters[0]
        .options
        .error_at("match", "invalid regular expression")
        .to_string();
    assert!(e.starts_with("test.yaml:4:48: filters[0].match"), "{e}");
}

#[test]
fn filter_references_are_checked() {
    let text = yaml(&[
        "servers:",
        "  - { name: db1, address: 127.0.0.1:3307 }",
        "filters:",
        "  - { name: audit, module: querylog }",
        "  - { name: audit, module: '' }",
        "services:",
        "  - { name: app, router: readconnroute, servers: [db1], user: u, password: p, filters: [audit, nope, audit] }",
        "listeners:",
        "  - { name: app, service: app, address: 127.0.0.1:4006 }",
    ]);
    assert_eq!(
        errors(&text),
        [
            "test.yaml:5:13: filters[1].name: duplicate filter name 'audit' (first defined at line 4, column 13)",
            "test.yaml:5:28: filters[1].module: must not be empty",
            "test.yaml:7:96: services[0].filters[1]: unknown filter 'nope' (known: audit)",
            "test.yaml:7:102: services[0].filters[2]: filter 'audit' is listed twice",
        ]
    );
}

/// A valid config with the given `admin:` line.
fn with_admin(admin: &str) -> String {
    with_options("    options: {}") + admin + "\n"
}

#[test]
fn admin_off_loopback_needs_credentials() {
    assert!(parse(&with_admin("admin: { address: 127.0.0.1:8989 }"), "t").is_ok());
    assert!(parse(&with_admin("admin: { address: \"[::1]:8989\" }"), "t").is_ok());
    assert!(parse(&with_admin("admin: { address: localhost:8989 }"), "t").is_ok());
    let ok = "admin: { address: 0.0.0.0:8989, user: ops, password: s3cret }";
    let config = parse(&with_admin(ok), "t").unwrap();
    assert_eq!(config.admin.unwrap().user.as_deref(), Some("ops"));

    let e = errors(&with_admin("admin: { address: 0.0.0.0:8989 }"));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("test.yaml:12:19: admin.address:"), "{e:?}");
    assert!(e[0].contains("set admin.user and admin.password"), "{e:?}");
    let e = errors(&with_admin("admin: { address: 10.0.0.1:8989, user: ops }"));
    assert!(e[0].contains("admin.user needs admin.password"), "{e:?}");
}

#[test]
fn drain_timeout() {
    let config = parse(&with_options("    options: {}"), "t").unwrap();
    assert_eq!(config.drain_timeout, Duration::from_secs(30));
    let e = errors(&(with_options("    options: {}") + "drain_timeout: 0s\n"));
    assert!(
        e[0].contains("drain_timeout: must be greater than zero"),
        "{e:?}"
    );
}

/// A config with one monitor whose entry ends with the lines `monitor` (line 9 on).
fn with_monitor(monitor: &[&str]) -> String {
    let mut lines = vec![
        "servers:",
        "  - { name: db1, address: 127.0.0.1:3307 }",
        "monitors:",
        "  - name: m",
        "    module: mariadbmon",
        "    servers: [db1]",
        "    user: u",
        "    password: p",
    ];
    lines.extend(monitor);
    lines.extend([
        "services:",
        "  - { name: app, router: readconnroute, servers: [db1], user: u, password: p, monitor: m }",
        "listeners:",
        "  - { name: app, service: app, address: 127.0.0.1:4006 }",
    ]);
    yaml(&lines)
}

#[test]
fn monitor_options_sit_under_options_and_old_files_still_read() {
    use switchyard_mariadbmon::MariaDbMonConfig;
    let new = parse(
        &with_monitor(&["    options: { interval: 200ms, failcount: 3 }"]),
        "test.yaml",
    )
    .unwrap();
    assert!(new.warnings().is_empty());
    let options: MariaDbMonConfig = new.monitors[0].options.parse().unwrap();
    assert_eq!(
        (options.interval, options.failcount),
        (Duration::from_millis(200), 3)
    );

    // Beside `module`, as older files wrote them: the same config, one warning per key.
    let old = parse(
        &with_monitor(&["    interval: 200ms", "    failcount: 3"]),
        "test.yaml",
    )
    .unwrap();
    assert_eq!(old, new);
    let warnings: Vec<String> = old.warnings().iter().map(ToString::to_string).collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings[0].starts_with("test.yaml:9:5: monitors[0].interval: deprecated: monitor options belong under `options:`"),
        "{warnings:?}"
    );
    // A mix of both places works; the same key in both is an error at the old one.
    let mixed = parse(
        &with_monitor(&["    interval: 200ms", "    options: { failcount: 3 }"]),
        "test.yaml",
    )
    .unwrap();
    assert_eq!(mixed, new);
    let e = errors(&with_monitor(&[
        "    interval: 200ms",
        "    options: { interval: 1s }",
    ]));
    assert_eq!(
        e,
        ["test.yaml:9:5: monitors[0].interval: `interval` is set here and under `options:`; keep the one under `options:`"]
    );
}

#[test]
fn the_monitor_module_checks_its_options_where_they_are_written() {
    let errors = |monitor: &[&str]| -> Vec<String> {
        match parse_checked(&with_monitor(monitor), "test.yaml", &crate::validate) {
            Ok(_) => panic!("expected errors"),
            Err(errors) => errors.iter().map(ToString::to_string).collect(),
        }
    };
    assert_eq!(
        errors(&["    options:", "      interval: 0s"]),
        ["test.yaml:10:17: monitors[0].options.interval: must be greater than zero"]
    );
    assert_eq!(
        errors(&["    failcount: 0"]),
        ["test.yaml:9:16: monitors[0].failcount: must be at least 1"]
    );
    let e = errors(&["    options: { intervall: 1s }"]);
    assert!(
        e[0].starts_with("test.yaml:9:16: monitors[0].options: unknown field `intervall`"),
        "{e:?}"
    );
}
