//! The `switchyard` command: the proxy, `check`, and `ctl`, a client of a running proxy's admin
//! API (kept out of the server library: it shares only the config reader with it).
#![forbid(unsafe_code)]

mod cli;
mod ctl;

fn main() -> std::process::ExitCode {
    cli::main()
}
