//! `switchyard ctl`: the admin API's command-line client, printing readable tables.

use std::process::ExitCode;

use clap::Subcommand;
use serde_json::Value;

#[derive(Debug, Subcommand)]
pub enum CtlCmd {
    /// Lists servers or monitors.
    List {
        #[arg(value_parser = ["servers", "monitors"])]
        what: String,
    },
    /// Shows one server.
    Show {
        #[arg(value_parser = ["server"])]
        what: String,
        name: String,
    },
    /// Sets an operator flag (maintenance or drain) on a server.
    Set {
        #[arg(value_parser = ["server"])]
        what: String,
        name: String,
        #[arg(value_parser = ["maintenance", "drain"])]
        flag: String,
    },
    /// Clears an operator flag on a server.
    Clear {
        #[arg(value_parser = ["server"])]
        what: String,
        name: String,
        #[arg(value_parser = ["maintenance", "drain"])]
        flag: String,
    },
}

/// Runs one `ctl` command against the admin API at `admin` (`host:port`).
pub fn run(admin: &str, cmd: &CtlCmd) -> ExitCode {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(10)))
        .build()
        .into();
    let base = format!("http://{admin}/v1");
    let result = match cmd {
        CtlCmd::List { what } => call(agent.get(format!("{base}/{what}")).call()).map(|v| {
            if what == "servers" {
                print_servers(&v)
            } else {
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default())
            }
        }),
        CtlCmd::Show { name, .. } => {
            call(agent.get(format!("{base}/servers/{name}")).call()).map(|v| {
                if let Value::Object(map) = v {
                    for (k, v) in map {
                        println!("{k:<20} {}", cell(&v));
                    }
                }
            })
        }
        CtlCmd::Set { name, flag, .. } => call(
            agent
                .put(format!("{base}/servers/{name}/{flag}"))
                .send_empty(),
        )
        .map(|_| println!("{name}: {flag} set")),
        CtlCmd::Clear { name, flag, .. } => {
            call(agent.delete(format!("{base}/servers/{name}/{flag}")).call())
                .map(|_| println!("{name}: {flag} cleared"))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("switchyard ctl: {e}");
            ExitCode::FAILURE
        }
    }
}

fn call(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Result<Value, String> {
    let mut response = response.map_err(|e| format!("cannot reach the admin API: {e}"))?;
    let status = response.status();
    let body = response.body_mut().read_to_string().unwrap_or_default();
    let value: Value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&body).unwrap_or(Value::String(body))
    };
    if status.is_success() {
        Ok(value)
    } else {
        let why = value
            .get("error")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| value.to_string());
        Err(format!("{status}: {why}"))
    }
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn print_servers(v: &Value) {
    let columns = [
        ("NAME", "name"),
        ("ADDRESS", "address"),
        ("ROLE", "role"),
        ("LAG_S", "lag_seconds"),
        ("GTID_BEHIND", "gtid_behind"),
        ("CONNS", "connections"),
        ("MONITOR", "monitor"),
    ];
    let rows: Vec<Vec<String>> = v
        .as_array()
        .map(|servers| {
            servers
                .iter()
                .map(|s| {
                    let mut row: Vec<String> =
                        columns.iter().map(|(_, key)| cell(&s[key])).collect();
                    let mut state = Vec::new();
                    if s["reachable"] == Value::Bool(false) {
                        state.push("unreachable");
                    }
                    if s["replication_broken"] == Value::Bool(true) {
                        state.push("replication broken");
                    }
                    if s["maintenance"] == Value::Bool(true) {
                        state.push("maintenance");
                    }
                    if s["drain"] == Value::Bool(true) {
                        state.push("drain");
                    }
                    row.push(if state.is_empty() {
                        "ok".into()
                    } else {
                        state.join(", ")
                    });
                    row
                })
                .collect()
        })
        .unwrap_or_default();
    let headers: Vec<&str> = columns.iter().map(|(h, _)| *h).chain(["STATE"]).collect();
    let widths: Vec<usize> = (0..headers.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].len())
                .chain([headers[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(headers.clone());
    for r in &rows {
        line(r.iter().map(String::as_str).collect());
    }
}
