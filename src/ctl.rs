//! `switchyard ctl`: the admin API's command-line client. `list` prints aligned tables, `show`
//! and `status` print one object as `key  value` lines, and `--json` prints the API's own JSON
//! instead.
//!
//! Exit codes: 0 done; 1 the API answered with an error, could not be reached, or (`health`)
//! the proxy is draining or unavailable; 2 a usage problem (clap's, or settings that cannot be
//! worked out, like a user without a password).

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use clap::builder::PossibleValue;
use clap::{Args, Subcommand, ValueEnum};
use saphyr_parser::{Event, Parser, ScalarStyle};
use serde_json::{Map, Value};

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
                    out.push_str(&format!("  - {}\n", self::text(p)));
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

// --- where the API is ---------------------------------------------------------------------

/// Where the admin API is and how to log in to it.
#[derive(Debug, PartialEq)]
struct Target {
    /// `host:port`.
    address: String,
    /// Where `address` came from, for messages.
    source: String,
    /// User and password for HTTP basic authentication.
    credentials: Option<(String, String)>,
}

/// The `admin` section of a config file, as far as `ctl` needs it.
#[derive(Debug, Default, PartialEq)]
struct AdminSection {
    present: bool,
    address: Option<String>,
    user: Option<String>,
    password: Option<String>,
}

impl Target {
    /// Options first, then the environment (`env`), then the config file's `admin` section;
    /// a user without a password is asked for one (`prompt`, given the user).
    fn resolve(
        args: &CtlArgs,
        config: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
        prompt: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Target, String> {
        let env = |name: &str| env(name).filter(|v| !v.is_empty());
        let mut user = args.user.clone().or_else(|| env(USER_ENV));
        let from_file = match &args.password_file {
            Some(path) => Some(read_password_file(path)?),
            None => None,
        };
        let mut password = args
            .password
            .clone()
            .or(from_file)
            .or_else(|| env(PASSWORD_ENV));
        let mut address = args
            .admin
            .clone()
            .map(|a| (a, "given with --admin".to_string()));
        if let Some(path) = config {
            if address.is_none() || user.is_none() || password.is_none() {
                let section = admin_section(path)?;
                let shown = path.display();
                if address.is_none() {
                    address = Some(match (section.address, section.present) {
                        (Some(a), _) => (a, format!("admin.address of {shown}")),
                        (None, true) => (DEFAULT_ADDRESS.into(), format!("the default of {shown}")),
                        (None, false) => (
                            DEFAULT_ADDRESS.into(),
                            format!("the default; {shown} has no admin section"),
                        ),
                    });
                }
                user = user.or(section.user);
                password = password.or(section.password);
            }
        }
        let (address, source) = address.unwrap_or_else(|| {
            (
                DEFAULT_ADDRESS.into(),
                "the default; give --admin or -c FILE".into(),
            )
        });
        let credentials = match (user, password) {
            (Some(u), Some(p)) => Some((u, p)),
            (None, None) => None,
            (Some(u), None) => match prompt(&u) {
                Some(p) => Some((u, p)),
                None => {
                    return Err(format!(
                        "there is a user ('{u}') but no password for the admin API: give \
                         --password-file, set {PASSWORD_ENV}, or run at a terminal to be asked"
                    ))
                }
            },
            (None, Some(_)) => {
                return Err(format!(
                    "there is a password but no user for the admin API: give --user or set \
                     {USER_ENV}"
                ))
            }
        };
        Ok(Target {
            address: connectable(&address),
            source,
            credentials,
        })
    }
}

/// The first line of a password file, without its line end.
fn read_password_file(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the password file {}: {e}", path.display()))?;
    let line = text.lines().next().unwrap_or("");
    if line.is_empty() {
        return Err(format!("the password file {} is empty", path.display()));
    }
    Ok(line.to_string())
}

/// Asks for the password of `user` without echo, when standard input is a terminal.
fn prompt_password(user: &str) -> Option<String> {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        return None;
    }
    rpassword::prompt_password(format!("Password of the admin API user '{user}': ")).ok()
}

/// `address` as a client connects to it: without `http://`, and with a wildcard host
/// (`0.0.0.0`, `[::]`) replaced by loopback.
fn connectable(address: &str) -> String {
    let a = address.trim();
    let a = a.strip_prefix("http://").unwrap_or(a).trim_end_matches('/');
    if let Some(port) = a.strip_prefix("0.0.0.0:") {
        format!("127.0.0.1:{port}")
    } else if let Some(port) = a.strip_prefix("[::]:") {
        format!("[::1]:{port}")
    } else {
        a.to_string()
    }
}

/// Reads the `admin` section of a config file. Only that section: the rest of the file may
/// have the very problems `ctl reload` is run to hear about (even a YAML syntax error, when it
/// comes after the section).
fn admin_section(path: &Path) -> Result<AdminSection, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    admin_of(&text, &path.display().to_string())
}

/// [`admin_section`] of a config's text; `origin` names it in messages.
fn admin_of(text: &str, origin: &str) -> Result<AdminSection, String> {
    let (doc, syntax_error) = yaml_tree(text);
    let Some(admin) = doc.get("admin") else {
        return match syntax_error {
            Some(e) => Err(format!(
                "cannot read the admin settings of {origin}: {e}; give --admin, --user and \
                 --password"
            )),
            None => Ok(AdminSection::default()),
        };
    };
    let field = |key: &str| admin.get(key).and_then(Value::as_str).map(str::to_string);
    Ok(AdminSection {
        present: true,
        address: field("address"),
        user: field("user"),
        password: field("password"),
    })
}

/// A YAML document as JSON with every scalar a string (null scalars and aliases are `null`).
/// A syntax error ends the document where it is, and is returned beside what was read.
fn yaml_tree(text: &str) -> (Value, Option<String>) {
    let mut error = None;
    let mut events = Parser::new_from_str(text).map_while(|r| match r {
        Ok((event, _)) => Some(event),
        Err(e) => {
            let m = e.marker();
            let (line, column) = (m.line(), m.col() + 1);
            error = Some(format!(
                "YAML syntax error at line {line}, column {column}: {}",
                e.info()
            ));
            None
        }
    });
    let mut doc = Value::Null;
    while let Some(event) = events.next() {
        match event {
            Event::StreamStart | Event::DocumentStart(_) | Event::Nothing => {}
            Event::StreamEnd => break,
            event => {
                doc = yaml_node(event, &mut events, 0);
                break;
            }
        }
    }
    drop(events);
    (doc, error)
}

/// The node that starts with `first`; containers end early where the events do.
fn yaml_node<'a>(
    first: Event<'a>,
    events: &mut impl Iterator<Item = Event<'a>>,
    depth: usize,
) -> Value {
    match first {
        Event::Scalar(text, style, ..) => {
            let null = matches!(&*text, "" | "~" | "null" | "Null" | "NULL");
            if style == ScalarStyle::Plain && null {
                Value::Null
            } else {
                Value::String(text.into_owned())
            }
        }
        // Deeper than any config goes: skipped, so that recursion stays bounded.
        Event::SequenceStart(..) | Event::MappingStart(..) if depth >= 32 => {
            let mut open = 1;
            for e in events.by_ref() {
                match e {
                    Event::SequenceStart(..) | Event::MappingStart(..) => open += 1,
                    Event::SequenceEnd | Event::MappingEnd => open -= 1,
                    _ => {}
                }
                if open == 0 {
                    break;
                }
            }
            Value::Null
        }
        Event::SequenceStart(..) => {
            let mut items = Vec::new();
            while let Some(e) = events.next() {
                if matches!(e, Event::SequenceEnd) {
                    break;
                }
                items.push(yaml_node(e, events, depth + 1));
            }
            Value::Array(items)
        }
        Event::MappingStart(..) => {
            let mut map = Map::new();
            while let Some(e) = events.next() {
                if matches!(e, Event::MappingEnd) {
                    break;
                }
                let key = yaml_node(e, events, depth + 1);
                let Some(e) = events.next() else { break };
                let value = yaml_node(e, events, depth + 1);
                if let Value::String(key) = key {
                    map.insert(key, value);
                }
            }
            Value::Object(map)
        }
        _ => Value::Null,
    }
}

// --- talking to the API -------------------------------------------------------------------

/// An answer of the API: the HTTP status and the JSON body (`Null` when empty, a string when
/// not JSON).
struct Answer {
    status: u16,
    reason: &'static str,
    body: Value,
}

struct Client {
    agent: ureq::Agent,
    target: Target,
    /// The `Authorization` header's value.
    authorization: Option<String>,
}

impl Client {
    fn new(target: Target) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(5)))
            // A reload rebuilds what changed (monitors connect to their servers).
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let authorization = target.credentials.as_ref().map(|(user, password)| {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            format!("Basic {token}")
        });
        Client {
            agent,
            target,
            authorization,
        }
    }

    /// Sends a request without a body; any HTTP status is an answer.
    fn send(&self, method: &str, path: &str) -> Result<Answer, String> {
        let address = &self.target.address;
        let mut request = ureq::http::Request::builder()
            .method(method)
            .uri(format!("http://{address}{path}"));
        if let Some(auth) = &self.authorization {
            request = request.header("Authorization", auth);
        }
        let request = request
            .body(())
            .map_err(|e| format!("bad admin API address '{address}': {e}"))?;
        let mut response = self.agent.run(request).map_err(|e| self.unreachable(&e))?;
        let status = response.status();
        let text = response
            .body_mut()
            .read_to_string()
            .map_err(|e| format!("the admin API at {address} sent a broken answer: {e}"))?;
        let body = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok(Answer {
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or(""),
            body,
        })
    }

    /// `GET path`, its body when the status is 2xx.
    fn get(&self, path: &str) -> Result<Value, Failure> {
        self.expect_ok(self.send("GET", path)?)
    }

    /// The body of a 2xx answer; other answers become their error message.
    fn expect_ok(&self, answer: Answer) -> Result<Value, Failure> {
        if (200..300).contains(&answer.status) {
            return Ok(answer.body);
        }
        let why = match &answer.body {
            Value::Object(o) if o.contains_key("error") => text(&o["error"]),
            Value::Null => "(no message)".to_string(),
            other => text(other),
        };
        let status = format!("{} {}", answer.status, answer.reason);
        let message = if answer.status == 401 {
            match &self.target.credentials {
                Some((user, _)) => format!(
                    "the admin API refused the credentials of user '{user}': {why} ({status})"
                ),
                None => format!(
                    "the admin API refused the credentials (none were given): {why} ({status}); \
                     give --user and --password, set {USER_ENV} and {PASSWORD_ENV}, or point -c \
                     at the config with admin.user and admin.password"
                ),
            }
        } else {
            format!("{why} ({status})")
        };
        Err(Failure::from(message))
    }

    fn unreachable(&self, e: &ureq::Error) -> String {
        let Target {
            address, source, ..
        } = &self.target;
        let why = match e {
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
                "connection refused — is switchyard running with an admin section?".to_string()
            }
            ureq::Error::Timeout(_) => "no answer in time".to_string(),
            ureq::Error::HostNotFound => "host not found".to_string(),
            other => other.to_string(),
        };
        format!("cannot reach the admin API at {address} ({source}): {why}")
    }
}

/// `name` as one path segment.
fn encode(name: &str) -> String {
    let mut out = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// --- tables -------------------------------------------------------------------------------

/// How a column gets its cell from a row.
enum Get {
    /// A field, as [`text`] writes it.
    Field(&'static str),
    /// Anything else.
    With(fn(&Value) -> String),
}

/// One column of a table.
struct Column {
    header: &'static str,
    get: Get,
    /// Right-aligned (numbers).
    right: bool,
}

const fn field(header: &'static str, key: &'static str) -> Column {
    Column {
        header,
        get: Get::Field(key),
        right: false,
    }
}

const fn number(header: &'static str, key: &'static str) -> Column {
    Column {
        header,
        get: Get::Field(key),
        right: true,
    }
}

const fn with(header: &'static str, get: fn(&Value) -> String) -> Column {
    Column {
        header,
        get: Get::With(get),
        right: false,
    }
}

const fn number_with(header: &'static str, get: fn(&Value) -> String) -> Column {
    Column {
        header,
        get: Get::With(get),
        right: true,
    }
}

const SERVERS: &[Column] = &[
    field("NAME", "name"),
    field("ADDRESS", "address"),
    field("ROLE", "role"),
    with("STATE", server_state),
    number_with("LAG", |s| match s["lag_seconds"].as_u64() {
        Some(n) => format!("{n}s"),
        None => "-".into(),
    }),
    number("GTID_BEHIND", "gtid_behind"),
    number("CONNS", "connections"),
    number("OPS", "operations"),
    number("STATEMENTS", "statements"),
    number_with("RESP_TIME", |s| match s["response_time_us"].as_u64() {
        Some(0) | None => "-".into(),
        Some(us) => micros(us),
    }),
];

const SERVICES: &[Column] = &[
    field("NAME", "name"),
    field("ROUTER", "router"),
    field("MONITOR", "monitor"),
    field("SERVERS", "servers"),
    field("FILTERS", "filters"),
    field("LISTENERS", "listeners"),
    number("SESSIONS", "sessions"),
];

const LISTENERS: &[Column] = &[
    field("NAME", "name"),
    field("ADDRESS", "address"),
    field("SERVICE", "service"),
    field("STATE", "state"),
    number("SESSIONS", "sessions"),
];

const SESSIONS: &[Column] = &[
    number("ID", "id"),
    field("USER", "user"),
    field("CLIENT", "client"),
    field("DB", "db"),
    field("SERVICE", "service"),
    with("BACKENDS", |s| {
        let backends: Vec<String> = s["backends"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|b| format!("{}({})", text(&b["server"]), text(&b["thread_id"])))
            .collect();
        if backends.is_empty() {
            "-".into()
        } else {
            backends.join(",")
        }
    }),
    field("IN_TXN", "in_transaction"),
    number_with("AGE", |s| s["age_seconds"].as_f64().map_or("-".into(), age)),
];

const MONITORS: &[Column] = &[
    field("NAME", "name"),
    field("MODULE", "module"),
    field("SERVERS", "servers"),
    with("PRIMARY", |m| text(&m["state"]["primary"])),
    number_with("TICKS", |m| {
        let ticks = &m["state"]["ticks"];
        text(if ticks.is_null() {
            &m["diagnostics"]["ticks"]
        } else {
            ticks
        })
    }),
    number_with("LAST_CHECK", |m| match m["state"]["updated"].as_u64() {
        Some(ms) => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            format!("{} ago", age(now.saturating_sub(ms) as f64 / 1000.0))
        }
        None => "-".into(),
    }),
    with("PROBLEMS", |m| text(&m["state"]["problems"])),
];

const FILTERS: &[Column] = &[
    field("NAME", "name"),
    field("MODULE", "module"),
    field("HEALTH", "health"),
    with("COUNTERS", |f| {
        let counters: Vec<String> = f["diagnostics"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(_, v)| v.is_u64() || v.is_i64())
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if counters.is_empty() {
            "-".into()
        } else {
            counters.join(" ")
        }
    }),
];

const BLOCKED_HOSTS: &[Column] = &[
    field("ADDRESS", "address"),
    number("FAILURES", "failures"),
    field("BLOCKED", "blocked"),
    number_with("EXPIRES_IN", |h| {
        h["expires_in_seconds"].as_f64().map_or("-".into(), age)
    }),
];

fn list_table(kind: Kind, rows: &Value) -> String {
    let columns = match kind {
        Kind::Server => SERVERS,
        Kind::Service => SERVICES,
        Kind::Listener => LISTENERS,
        Kind::Session => SESSIONS,
        Kind::Monitor => MONITORS,
        Kind::Filter => FILTERS,
        Kind::BlockedHost => BLOCKED_HOSTS,
    };
    let mut rows: Vec<Value> = rows.as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        return format!("no {}\n", kind.plural());
    }
    if kind == Kind::Session {
        rows.sort_by_key(|s| s["id"].as_u64());
    }
    table(columns, &rows)
}

/// Renders `rows` as an aligned table: a header line, then one line per row; columns two
/// spaces apart, numbers right-aligned, no trailing spaces.
fn table(columns: &[Column], rows: &[Value]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            columns
                .iter()
                .map(|c| match c.get {
                    Get::Field(key) => text(&row[key]),
                    Get::With(f) => f(row),
                })
                .collect()
        })
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .chain([c.header.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut l = String::new();
        for ((cell, c), width) in cells.zip(columns).zip(&widths) {
            if !l.is_empty() {
                l.push_str("  ");
            }
            let pad = " ".repeat(width - cell.chars().count());
            if c.right {
                l.push_str(&pad);
                l.push_str(cell);
            } else {
                l.push_str(cell);
                l.push_str(&pad);
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&mut columns.iter().map(|c| c.header));
    for row in &cells {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

/// A server's state: `up`/`down` as its monitor sees it, then its flags; `-` unmonitored.
fn server_state(s: &Value) -> String {
    let mut state = Vec::new();
    match s["reachable"].as_bool() {
        Some(true) => state.push("up"),
        Some(false) => state.push("down"),
        None => {}
    }
    for (key, word) in [
        ("replication_broken", "replication-broken"),
        ("maintenance", "maintenance"),
        ("drain", "drain"),
    ] {
        if s[key] == Value::Bool(true) {
            state.push(word);
        }
    }
    if state.is_empty() {
        "-".into()
    } else {
        state.join(",")
    }
}

/// A value as one table cell or `show` line: `-` for null or empty, `yes`/`no`, lists joined
/// with commas (`db1,db2`), objects as `{key: value, ...}`.
fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) if s.is_empty() => "-".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.into(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) if items.is_empty() => "-".into(),
        Value::Array(items) => {
            let scalars = items.iter().all(|i| !(i.is_array() || i.is_object()));
            let items: Vec<String> = items.iter().map(nested).collect();
            items.join(if scalars { "," } else { ", " })
        }
        Value::Object(_) => nested(v),
    }
}

/// A value inside a list or object: compact, with brackets.
fn nested(v: &Value) -> String {
    match v {
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(nested).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(map) => {
            let items: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k}: {}", nested(v)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        Value::String(s) if s.is_empty() => "\"\"".into(),
        Value::String(s) => s.clone(),
        Value::Null => "null".into(),
        other => text(other),
    }
}

/// One object as `key  value` lines, `name` or `id` first; nested objects as dotted keys
/// (`diagnostics.delivered`), lists of scalars on one line, lists of objects one line per
/// item (`state.servers[0]`).
fn key_values(item: &Value) -> String {
    let mut lines = Vec::new();
    flatten("", item, &mut lines);
    let first = |k: &String| !matches!(k.as_str(), "name" | "id");
    lines.sort_by_key(|(k, _)| first(k));
    let width = lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    lines
        .iter()
        .map(|(k, v)| format!("{k:<width$}  {v}").trim_end().to_string() + "\n")
        .collect()
}

fn flatten(prefix: &str, v: &Value, lines: &mut Vec<(String, String)>) {
    match v {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, lines);
            }
        }
        Value::Array(items) if items.iter().any(Value::is_object) => {
            for (i, item) in items.iter().enumerate() {
                lines.push((format!("{prefix}[{i}]"), text(item)));
            }
        }
        other => lines.push((prefix.to_string(), text(other))),
    }
}

/// Microseconds, readably: `850us`, `1.2ms`, `1.50s`.
fn micros(us: u64) -> String {
    match us {
        0..=999 => format!("{us}us"),
        1_000..=999_999 => format!("{:.1}ms", us as f64 / 1e3),
        _ => format!("{:.2}s", us as f64 / 1e6),
    }
}

/// Seconds, readably: `4.2s`, `3m12s`, `2h05m`, `3d04h`.
fn age(seconds: f64) -> String {
    if seconds < 60.0 {
        return format!("{seconds:.1}s");
    }
    let s = seconds as u64;
    match s {
        0..=3_599 => format!("{}m{:02}s", s / 60, s % 60),
        3_600..=86_399 => format!("{}h{:02}m", s / 3_600, s % 3_600 / 60),
        _ => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3_600),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;
    use serde_json::json;

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
        assert!(
            out.starts_with("NAME  MODULE      SERVERS  PRIMARY  TICKS  LAST_CHECK  PROBLEMS\n")
        );
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
    fn admin_section_is_read_even_from_a_broken_config() {
        let flow = "threadz: 1\nadmin: { address: \"0.0.0.0:9000\", user: ops, password: 12345 }\n";
        let section = admin_of(flow, "f.yaml").unwrap();
        assert_eq!(
            section,
            AdminSection {
                present: true,
                address: Some("0.0.0.0:9000".into()),
                user: Some("ops".into()),
                password: Some("12345".into()),
            }
        );
        let block = "servers: [db1]\nadmin:\n  user: 'o p'\n  password: ~\nlisteners: [\n  - : :\n";
        let section = admin_of(block, "f.yaml").unwrap();
        assert!(section.present && section.address.is_none() && section.password.is_none());
        assert_eq!(section.user.as_deref(), Some("o p"));
        assert!(admin_of("admin:\n", "f.yaml").unwrap().present);
        assert_eq!(
            admin_of("servers: []\n", "f.yaml").unwrap(),
            AdminSection::default()
        );
        assert_eq!(admin_of("", "f.yaml").unwrap(), AdminSection::default());
        let e = admin_of("servers: [\n  - : :\nadmin: { user: a }\n", "f.yaml").unwrap_err();
        assert!(
            e.starts_with("cannot read the admin settings of f.yaml: YAML syntax error at line 2"),
            "{e}"
        );
        // Nesting beyond any config is skipped, not recursed into.
        let deep = format!(
            "a: {}1{}\nadmin: {{ user: u }}\n",
            "[".repeat(200),
            "]".repeat(200)
        );
        assert_eq!(
            admin_of(&deep, "f.yaml").unwrap().user.as_deref(),
            Some("u")
        );
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

        let t =
            Target::resolve(&ctl(&["ctl", "status"]), Some(&config), &no_env, &no_prompt).unwrap();
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
}
