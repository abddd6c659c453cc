//! Where the admin API is and how to log in to it: options, then the environment, then the
//! config file's `admin` section.

use std::path::Path;

use super::{CtlArgs, DEFAULT_ADDRESS, PASSWORD_ENV, USER_ENV};
use switchyard::config::admin_section;

/// Where the admin API is and how to log in to it.
#[derive(Debug, PartialEq)]
pub(super) struct Target {
    /// `host:port`.
    pub(super) address: String,
    /// Where `address` came from, for messages.
    pub(super) source: String,
    /// User and password for HTTP basic authentication.
    pub(super) credentials: Option<(String, String)>,
}

impl Target {
    /// Options first, then the environment (`env`), then the config file's `admin` section;
    /// a user without a password is asked for one (`prompt`, given the user).
    pub(super) fn resolve(
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
                let section = admin_section(path)
                    .map_err(|e| format!("{e}; give --admin, --user and --password"))?;
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
pub(super) fn prompt_password(user: &str) -> Option<String> {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        return None;
    }
    rpassword::prompt_password(format!("Password of the admin API user '{user}': ")).ok()
}

/// `address` as a client connects to it: without `http://`, and with a wildcard host
/// (`0.0.0.0`, `[::]`) replaced by loopback.
pub(super) fn connectable(address: &str) -> String {
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
