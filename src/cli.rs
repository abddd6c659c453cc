//! The command line: `switchyard [-c FILE]` runs the proxy, `switchyard check -c FILE`
//! validates a config and exits.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use switchyard::config::{self, Config, ConfigErrors};

/// A read/write-splitting MySQL/MariaDB proxy.
#[derive(Debug, Parser)]
#[command(name = "switchyard", version, about)]
pub struct Cli {
    /// The YAML config file; without it, the embedded sandbox config is used.
    #[arg(short, long, global = true)]
    pub config: Option<PathBuf>,
    /// Write the process id to this file once the proxy serves; removed at exit.
    #[arg(long, global = true, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Cmd>,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Runs the proxy (the default).
    Run,
    /// Validates the config, prints every problem with its line and column, and exits.
    Check,
    /// Talks to a running proxy's admin API (`ctl list servers`, `ctl reload`, ...).
    Ctl(crate::ctl::CtlArgs),
}

fn load(path: &Option<PathBuf>) -> Result<Config, ConfigErrors> {
    match path {
        Some(p) => config::load(p, &switchyard::validate),
        None => config::parse_checked(
            config::SANDBOX,
            config::SANDBOX_ORIGIN,
            &switchyard::validate,
        ),
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Cmd::Ctl(args)) = &cli.command {
        return crate::ctl::main(args, cli.config.as_deref());
    }
    let origin = cli
        .config
        .as_ref()
        .map_or(config::SANDBOX_ORIGIN.to_string(), |p| {
            p.display().to_string()
        });
    let config = match load(&cli.config) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!("{origin}: {} problem(s); nothing was started", errors.len());
            return ExitCode::from(2);
        }
    };
    if matches!(cli.command, Some(Cmd::Check)) {
        for w in config.warnings() {
            eprintln!("warning: {w}");
        }
        println!("{origin}: OK");
        return ExitCode::SUCCESS;
    }
    switchyard::logging::init(&config.log);
    for w in config.warnings() {
        tracing::warn!("{w}");
    }
    // Sessions run on workers of their own (see `switchyard::workers`); this runtime has the
    // rest: listeners, monitors, the admin API, reloads.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let options = switchyard::RunOptions {
        config_path: cli.config.clone(),
        pid_file: cli.pid_file.clone(),
    };
    match runtime.block_on(switchyard::run(config, options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("switchyard: {e}");
            ExitCode::FAILURE
        }
    }
}
