//! `switchyard check -c FILE` and startup with broken configs: every problem is reported with
//! its file, line and column, the exit code is 2, and nothing starts listening.

mod common;

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use common::{free_port, run_switchyard, temp_dir};

const TIMEOUT: Duration = Duration::from_secs(20);

/// The place of the marker `⟦` in `marked` (1-based line and column), and the text without it.
fn unmark(marked: &str) -> (String, usize, usize) {
    let at = marked.find('⟦').expect("a ⟦ marker");
    let before = &marked[..at];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (marked.replacen('⟦', "", 1), line, col)
}

/// A valid config; `listener_port` is the rw listener's port.
fn base(listener_port: u16) -> String {
    format!(
        "# a valid config
servers:
  - {{ name: db1, address: 127.0.0.1:3307, role: primary }}
  - {{ name: db2, address: 127.0.0.1:3308, role: replica }}
services:
  - name: rw
    router: readconnroute
    servers: [db1, db2]
    user: switchyard
    password: switchyard
    options: {{ router_options: primary }}
listeners:
  - {{ name: rw, service: rw, address: 127.0.0.1:{listener_port} }}
"
    )
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, text).unwrap();
    path
}

fn check(path: &std::path::Path) -> (Option<i32>, String, String) {
    run_switchyard(&["check", "-c", path.to_str().unwrap()], TIMEOUT)
}

#[test]
fn shipped_configs_are_valid() {
    for file in ["config/sandbox.yaml", "config/example.yaml"] {
        let (code, out, err) = run_switchyard(&["check", "-c", file], TIMEOUT);
        assert_eq!(code, Some(0), "{file}: stdout {out:?} stderr {err:?}");
        assert!(out.contains(&format!("{file}: OK")), "{file}: {out:?}");
        assert!(!err.contains("problem"), "{file}: {err:?}");
    }
}

#[test]
fn a_valid_config_checks_ok_without_reaching_any_server() {
    let dir = temp_dir("sy-check");
    // Nothing listens on port 1: check validates the file, it does not connect.
    let text = base(free_port()).replace("127.0.0.1:3307", "127.0.0.1:1");
    let path = write(&dir, "ok.yaml", &text);
    let (code, out, err) = check(&path);
    assert_eq!(code, Some(0), "stdout {out:?} stderr {err:?}");
    assert!(out.contains(&format!("{}: OK", path.display())), "{out:?}");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn monitor_options_beside_module_still_check_ok_with_a_warning() {
    let dir = temp_dir("sy-check-legacy");
    let monitor = "monitors:
  - name: repl
    module: mariadbmon
    servers: [db1, db2]
    user: monitor
    password: monitor
    ⟦interval: 500ms
";
    let (text, line, col) = unmark(&(base(free_port()) + monitor));
    let path = write(&dir, "legacy.yaml", &text);
    let (code, out, err) = check(&path);
    assert_eq!(code, Some(0), "stdout {out:?} stderr {err:?}");
    let expected = format!(
        "warning: {}:{line}:{col}: monitors[0].interval: deprecated: monitor options belong under `options:`",
        path.display()
    );
    assert!(err.starts_with(&expected), "{err:?}");
    let _ = fs::remove_dir_all(&dir);
}

/// One defect each: (what, config with a ⟦ marker where the problem must be reported, words
/// the message must contain).
fn broken_configs() -> Vec<(&'static str, String, &'static [&'static str])> {
    let b = base(4999);
    vec![
        (
            "unknown key in a server",
            b.replace("role: primary }", "role: primary, ⟦colour: blue }"),
            &["colour"],
        ),
        (
            "unknown top-level key",
            b.replace("# a valid config\n", "# a valid config\n⟦threadz: 4\n"),
            &["threadz"],
        ),
        (
            "unknown router option",
            b.replace(
                "options: { router_options: primary }",
                "options: { ⟦router_option: primary }",
            ),
            &["router_option"],
        ),
        (
            "address without a port",
            b.replace("address: 127.0.0.1:3308", "address: ⟦\"db2.example\""),
            &["db2.example", "port"],
        ),
        (
            "port out of range",
            b.replace("address: 127.0.0.1:4999", "address: ⟦127.0.0.1:99999"),
            &["99999"],
        ),
        (
            "port that is not a number",
            b.replace("address: 127.0.0.1:3307", "address: ⟦127.0.0.1:abc"),
            &["abc"],
        ),
        (
            "unknown server reference",
            b.replace("servers: [db1, db2]", "servers: [db1, ⟦db9]"),
            &["db9"],
        ),
        (
            "unknown router",
            b.replace("router: readconnroute", "router: ⟦readwritesplot"),
            &["readwritesplot"],
        ),
        (
            "bad router option value",
            b.replace("router_options: primary", "router_options: ⟦sideways"),
            &["router_options"],
        ),
        (
            "unknown service reference",
            b.replace("service: rw,", "service: ⟦nope,"),
            &["nope"],
        ),
        (
            "duplicate server name",
            b.replace("{ name: db2,", "{ name: ⟦db1,"),
            &["duplicate", "db1"],
        ),
        (
            "wrong type",
            b.replace("user: switchyard", "user: ⟦[switchyard]"),
            &["user"],
        ),
        (
            "bad role",
            b.replace("role: replica", "role: ⟦slave"),
            &["role"],
        ),
    ]
}

#[test]
fn each_broken_config_is_reported_with_line_and_column() {
    let dir = temp_dir("sy-check");
    let mut failures = Vec::new();
    for (i, (what, marked, words)) in broken_configs().into_iter().enumerate() {
        let (text, line, col) = unmark(&marked);
        let path = write(&dir, &format!("bad{i}.yaml"), &text);
        let (code, out, err) = check(&path);
        let location = format!("{}:{line}:{col}:", path.display());
        let problem = err.lines().find(|l| l.starts_with(&location));
        let ok = code == Some(2)
            && !out.contains("OK")
            && problem.is_some_and(|p| words.iter().all(|w| p.contains(w)));
        if !ok {
            failures.push(format!(
                "{what}: expected exit 2 and a line `{location} ...` containing {words:?};\n  \
                 got exit {code:?}, stdout {out:?}, stderr:\n{err}"
            ));
        }
    }
    let _ = fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn every_problem_of_a_file_is_reported_at_once() {
    let dir = temp_dir("sy-check");
    let marked = [
        "servers:",
        "  - { name: db1, address: 127.0.0.1:3307, role: primary, ⟦colour: blue }",
        "  - { name: db2, address: ⟦\"not-an-address\", role: replica }",
        "services:",
        "  - name: rw",
        "    router: readconnroute",
        "    servers: [db1, ⟦db9]",
        "    user: switchyard",
        "    password: switchyard",
        "    options: { router_options: ⟦sideways }",
        "  - name: x",
        "    router: ⟦nosuchrouter",
        "    servers: [db1]",
        "    user: a",
        "    password: b",
        "listeners:",
        "  - { name: rw, service: rw, address: 127.0.0.1:4999 }",
        "  - { name: x, service: x, address: ⟦127.0.0.1:abc }",
    ];
    let mut expected = Vec::new();
    let mut lines = Vec::new();
    for (i, l) in marked.iter().enumerate() {
        if let Some(at) = l.find('⟦') {
            expected.push((i + 1, at + 1));
        }
        lines.push(l.replace('⟦', ""));
    }
    let path = write(&dir, "many.yaml", &(lines.join("\n") + "\n"));
    let (code, out, err) = check(&path);
    assert_eq!(code, Some(2), "stdout {out:?} stderr {err:?}");
    for (line, col) in &expected {
        let location = format!("{}:{line}:{col}: ", path.display());
        assert!(
            err.lines().any(|l| l.starts_with(&location)),
            "no problem reported at {location}; stderr:\n{err}"
        );
    }
    let reported = err
        .lines()
        .filter(|l| l.starts_with(&format!("{}:", path.display())))
        .filter(|l| !l.contains("problem(s)"))
        .count();
    assert_eq!(reported, expected.len(), "stderr:\n{err}");
    assert!(err.contains("6 problem(s)"), "{err}");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn yaml_syntax_errors_and_missing_files_are_reported() {
    let dir = temp_dir("sy-check");
    let path = write(
        &dir,
        "syntax.yaml",
        &base(4999).replace("servers: [db1, db2]", "servers: [db1, db2"),
    );
    let (code, _, err) = check(&path);
    assert_eq!(code, Some(2), "{err}");
    let prefix = format!("{}:", path.display());
    let line = err
        .lines()
        .find(|l| l.starts_with(&prefix) && l.contains("YAML"))
        .unwrap_or_else(|| panic!("no YAML syntax error reported: {err}"));
    // file:LINE:COL: with numbers.
    let mut parts = line[prefix.len()..].splitn(3, ':');
    let l: usize = parts.next().unwrap().parse().expect("a line number");
    let c: usize = parts.next().unwrap().parse().expect("a column number");
    assert!(l >= 8 && c >= 1, "{line}");

    let path = write(
        &dir,
        "tab.yaml",
        &base(4999).replace("  - name: rw", "\t- name: rw"),
    );
    let (code, _, err) = check(&path);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains(&format!("{}:6:", path.display())), "{err}");

    let missing = dir.join("no-such-file.yaml");
    let (code, _, err) = check(&missing);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains(&missing.display().to_string()), "{err}");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn startup_with_a_broken_config_exits_without_listening() {
    let dir = temp_dir("sy-check");
    let (p1, p2) = (free_port(), free_port());
    // The first listener is fine, the second names an unknown service: nothing may start.
    let text = format!(
        "{}  - {{ name: other, service: ⟦nope, address: 127.0.0.1:{p2} }}\n",
        base(p1)
    );
    let (text, line, col) = unmark(&text);
    let path = write(&dir, "bad.yaml", &text);
    let (code, out, err) = run_switchyard(&["-c", path.to_str().unwrap()], TIMEOUT);
    assert!(
        code.is_some(),
        "the proxy kept running with a broken config; stderr {err:?}"
    );
    assert_ne!(code, Some(0), "stdout {out:?} stderr {err:?}");
    assert_eq!(code, Some(2), "stderr {err:?}");
    assert!(
        err.contains(&format!("{}:{line}:{col}:", path.display())),
        "{err}"
    );
    for port in [p1, p2] {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        assert!(
            TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_err(),
            "something listens on {port}"
        );
    }

    // An explicit `run` subcommand behaves the same.
    let (code, _, err) = run_switchyard(&["run", "-c", path.to_str().unwrap()], TIMEOUT);
    assert_eq!(code, Some(2), "stderr {err:?}");
    let _ = fs::remove_dir_all(&dir);
}
