//! `switchyard ctl`: the admin API's command-line client. `list` prints aligned tables, `show`
//! and `status` print one object as `key  value` lines, and `--json` prints the API's own JSON
//! instead.
//!
//! Exit codes: 0 done; 1 the API answered with an error, could not be reached, or (`health`)
//! the proxy is draining or unavailable; 2 a usage problem (clap's, or settings that cannot be
//! worked out, like a user without a password).

use std::path::Path;
use std::process::ExitCode;

use clap::builder::PossibleValue;
use clap::{Args, Subcommand, ValueEnum};
use serde_json::Value;

use client::{encode, Client};
use table::{key_values, list_table, text};
use target::{prompt_password, Target};

const DEFAULT_ADDRESS: &str = "127.0.0.1:8989";
const USER_ENV: &str = "SWITCHYARD_ADMIN_USER";
const PASSWORD_ENV: &str = "SWITCHYARD_ADMIN_PASSWORD";

/// `switchyard ctl`'s options and command.
#[derive(Debug, Args)]
pub struct CtlArgs {
    /// The admin API's address; default: `admin.address` of the config given with -c, else
    /// 127.0.0.1:8989.
    #[arg(long, global = true, value_name = "HOST:PORT")]
    pub admin: Option<String>,
    /// The admin API's user (HTTP basic authentication); default: $SWITCHYARD_ADMIN_USER, else
    /// `admin.user` of the config.
    #[arg(long, global = true)]
    pub user: Option<String>,
    /// The user's password; default: --password-file, else $SWITCHYARD_ADMIN_PASSWORD, else
    /// `admin.password` of the config, else a prompt when run at a terminal. (A file, the
    /// environment or the prompt keep it out of the process list.)
    #[arg(long, global = true)]
    pub password: Option<String>,
    /// Reads the password from the first line of FILE.
    #[arg(long, global = true, value_name = "FILE")]
    pub password_file: Option<std::path::PathBuf>,
    /// Print the API's JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub cmd: CtlCmd,
}

#[derive(Debug, Subcommand)]
pub enum CtlCmd {
    /// Lists servers, services, listeners, sessions, monitors, filters or blocked-hosts (client
    /// addresses with recent failed logins) as a table.
    List { what: Kinds },
    /// Shows one server, service, listener, session (by id), monitor or filter.
    Show { what: OneKind, name: String },
    /// Sets an operator flag on a server: `maintenance` (no new sessions, sessions move off it)
    /// or `drain` (no new sessions, open ones finish).
    Set {
        #[arg(value_parser = ["server"])]
        what: String,
        name: String,
        flag: Flag,
    },
    /// Clears an operator flag on a server.
    Clear {
        #[arg(value_parser = ["server"])]
        what: String,
        name: String,
        flag: Flag,
    },
    /// Stops a listener: connections to its address are refused until it is started again.
    Stop {
        #[arg(value_parser = ["listener"])]
        what: String,
        name: String,
    },
    /// Starts a stopped listener.
    Start {
        #[arg(value_parser = ["listener"])]
        what: String,
        name: String,
    },
    /// Reloads the proxy's config file; a bad one is refused with its errors and the running
    /// config stays.
    Reload,
    /// Lifts the login block of a client address (all addresses without one) and forgets its
    /// failed logins.
    Unblock { address: Option<String> },
    /// The proxy's health: `ok` or `degraded` (exit 0), `draining` or `unavailable` (exit 1).
    Health,
    /// The proxy's overview: version, uptime, config file, sessions, reloads.
    Status,
}

/// The kinds of objects the admin API lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Server,
    Service,
    Listener,
    Session,
    Monitor,
    Filter,
    /// Client addresses with recent failed logins; listed only.
    BlockedHost,
}

impl Kind {
    /// The kinds with a `show`.
    const ALL: [Kind; 6] = [
        Kind::Server,
        Kind::Service,
        Kind::Listener,
        Kind::Session,
        Kind::Monitor,
        Kind::Filter,
    ];

    fn singular(self) -> &'static str {
        match self {
            Kind::Server => "server",
            Kind::Service => "service",
            Kind::Listener => "listener",
            Kind::Session => "session",
            Kind::Monitor => "monitor",
            Kind::Filter => "filter",
            Kind::BlockedHost => "blocked-host",
        }
    }

    /// Also the API's path: `/v1/servers`.
    fn plural(self) -> &'static str {
        match self {
            Kind::Server => "servers",
            Kind::Service => "services",
            Kind::Listener => "listeners",
            Kind::Session => "sessions",
            Kind::Monitor => "monitors",
            Kind::Filter => "filters",
            Kind::BlockedHost => "blocked-hosts",
        }
    }

    /// The API has `/v1/<plural>/<name>` for these; monitors and filters are found in the list.
    fn has_item_path(self) -> bool {
        !matches!(self, Kind::Monitor | Kind::Filter)
    }
}

/// A kind written in the plural (`list servers`); the singular is taken too.
#[derive(Debug, Clone, Copy)]
pub struct Kinds(pub Kind);

/// A kind written in the singular (`show server db1`); the plural is taken too.
#[derive(Debug, Clone, Copy)]
pub struct OneKind(pub Kind);

const KINDS: [Kinds; 7] = {
    let [a, b, c, d, e, f] = Kind::ALL;
    [
        Kinds(a),
        Kinds(b),
        Kinds(c),
        Kinds(d),
        Kinds(e),
        Kinds(f),
        Kinds(Kind::BlockedHost),
    ]
};
const ONE_KINDS: [OneKind; 6] = {
    let [a, b, c, d, e, f] = Kind::ALL;
    [
        OneKind(a),
        OneKind(b),
        OneKind(c),
        OneKind(d),
        OneKind(e),
        OneKind(f),
    ]
};

impl ValueEnum for Kinds {
    fn value_variants<'a>() -> &'a [Self] {
        &KINDS
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.0.plural()).alias(self.0.singular()))
    }
}

impl ValueEnum for OneKind {
    fn value_variants<'a>() -> &'a [Self] {
        &ONE_KINDS
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.0.singular()).alias(self.0.plural()))
    }
}

/// An operator flag on a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Flag {
    Maintenance,
    Drain,
}

impl Flag {
    fn as_str(self) -> &'static str {
        match self {
            Flag::Maintenance => "maintenance",
            Flag::Drain => "drain",
        }
    }
}

/// Runs `switchyard ctl`; `config` is the file given with `-c`, read for its `admin` section.
pub fn main(args: &CtlArgs, config: Option<&Path>) -> ExitCode {
    let env = |name: &str| std::env::var(name).ok();
    let target = match Target::resolve(args, config, &env, &prompt_password) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("switchyard ctl: {e}");
            return ExitCode::from(2);
        }
    };
    let client = Client::new(target);
    match execute(&client, &args.cmd, args.json) {
        Ok(Outcome { text, success }) => {
            write_stdout(&text);
            if success {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(Failure { stdout, message }) => {
            write_stdout(&stdout);
            eprintln!("switchyard ctl: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Writes to standard output; a closed pipe (`ctl list servers | head -1`) is no error.
fn write_stdout(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// What a command prints on standard output, and whether it ends with exit code 0.
struct Outcome {
    text: String,
    success: bool,
}

impl Outcome {
    fn ok(text: String) -> Self {
        Outcome {
            text,
            success: true,
        }
    }
}

/// A command that failed: `message` goes to standard error; `stdout` holds what goes to
/// standard output first (the API's JSON answer under `--json`, when it is the data asked
/// for, like a refused reload's errors).
#[derive(Debug)]
struct Failure {
    stdout: String,
    message: String,
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure {
            stdout: String::new(),
            message,
        }
    }
}

fn execute(client: &Client, cmd: &CtlCmd, json: bool) -> Result<Outcome, Failure> {
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default() + "\n";
    match cmd {
        CtlCmd::List { what: Kinds(kind) } => {
            let rows = client.get(&format!("/v1/{}", kind.plural()))?;
            Ok(Outcome::ok(if json {
                pretty(&rows)
            } else {
                list_table(*kind, &rows)
            }))
        }
        CtlCmd::Show {
            what: OneKind(kind),
            name,
        } => {
            let item = if kind.has_item_path() {
                client.get(&format!("/v1/{}/{}", kind.plural(), encode(name)))?
            } else {
                let all = client.get(&format!("/v1/{}", kind.plural()))?;
                all.as_array()
                    .and_then(|items| items.iter().find(|i| i["name"] == name.as_str()))
                    .cloned()
                    .ok_or_else(|| format!("no {} named '{name}'", kind.singular()))?
            };
            Ok(Outcome::ok(if json {
                pretty(&item)
            } else {
                key_values(&item)
            }))
        }
        CtlCmd::Set { name, flag, .. } | CtlCmd::Clear { name, flag, .. } => {
            let on = matches!(cmd, CtlCmd::Set { .. });
            let path = format!("/v1/servers/{}/{}", encode(name), flag.as_str());
            client.expect_ok(client.send(if on { "PUT" } else { "DELETE" }, &path)?)?;
            let done = if on { "set" } else { "cleared" };
            Ok(Outcome::ok(if json {
                String::new()
            } else {
                format!("server {name}: {} {done}\n", flag.as_str())
            }))
        }
        CtlCmd::Stop { name, .. } | CtlCmd::Start { name, .. } => {
            let (action, done) = if matches!(cmd, CtlCmd::Stop { .. }) {
                ("stop", "stopped")
            } else {
                ("start", "started")
            };
            let path = format!("/v1/listeners/{}/{action}", encode(name));
            client.expect_ok(client.send("PUT", &path)?)?;
            Ok(Outcome::ok(if json {
                String::new()
            } else {
                format!("listener {name}: {done}\n")
            }))
        }
        CtlCmd::Unblock { address } => {
            let path = match address {
                Some(a) => format!("/v1/blocked-hosts/{}", encode(a)),
                None => "/v1/blocked-hosts".to_string(),
            };
            let body = client.expect_ok(client.send("DELETE", &path)?)?;
            let n = body["unblocked"].as_u64().unwrap_or(0);
            let whom = address.as_deref().unwrap_or("every address");
            Ok(Outcome::ok(if json {
                pretty(&body)
            } else {
                format!("{whom}: failed logins forgotten, {n} unblocked\n")
            }))
        }
        CtlCmd::Reload => {
            let answer = client.send("POST", "/v1/reload")?;
            if answer.status == 400 && answer.body["errors"].is_array() {
                let mut message = text(&answer.body["error"]);
                for e in answer.body["errors"].as_array().into_iter().flatten() {
                    message.push_str("\n  ");
                    message.push_str(&text(e));
                }
                return Err(Failure {
                    stdout: if json {
                        pretty(&answer.body)
                    } else {
                        String::new()
                    },
                    message,
                });
            }
            let body = client.expect_ok(answer)?;
            Ok(Outcome::ok(if json {
                pretty(&body)
            } else {
                let mut out = String::from("reloaded\n");
                for w in body["warnings"].as_array().into_iter().flatten() {
                    out.push_str(&format!("warning: {}\n", text(w)));
                }
                out
            }))
        }
        CtlCmd::Health => {
            let answer = client.send("GET", "/health")?;
            let status = answer.body["status"].as_str().map(str::to_string);
            let Some(status) = status.filter(|_| matches!(answer.status, 200 | 503)) else {
                return Err(client.expect_ok(answer).err().unwrap_or_else(|| {
                    Failure::from("/health answered without a status".to_string())
                }));
            };
            let text = if json {
                pretty(&answer.body)
            } else {
                let mut out = format!("{status}\n");
                for p in answer.body["problems"].as_array().into_iter().flatten() {
                    out.push_str(&format!("  - {}\n", text(p)));
                }
                out
            };
            Ok(Outcome {
                text,
                success: matches!(status.as_str(), "ok" | "degraded"),
            })
        }
        CtlCmd::Status => {
            let overview = client.get("/v1")?;
            Ok(Outcome::ok(if json {
                pretty(&overview)
            } else {
                key_values(&overview)
            }))
        }
    }
}

mod client;
mod table;
mod target;

#[cfg(test)]
mod tests;
