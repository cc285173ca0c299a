//! The `v6fw` command line: one subcommand per module under [`crate::cmd`].

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::cmd;

/// v6fw: a userspace IPv6 host firewall engine.
#[derive(Debug, Parser)]
#[command(name = "v6fw", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The exit code of a command-line error, as clap exits with it.
const USAGE_EXIT: u8 = 2;

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Decide every packet of a pcap/pcapng capture offline and report.
    Replay(cmd::replay::Args),
    /// Filter live (needs root / Administrator): NFQUEUE on Linux, WinDivert on Windows.
    Run(cmd::run::Args),
    /// List, open and close port/protocol pairs (globally or per connection).
    Ports(cmd::ports::Args),
    /// Check a policy file: every error with its line and column, or the effective open sets.
    Check(cmd::check::Args),
    /// Replace the whole policy with a policy file, at once (like `nft -f`).
    Load(cmd::load::Args),
    /// Have the running daemon re-read its own policy file (as SIGHUP).
    Reload(cmd::load::ReloadArgs),
    /// List the connections (network interfaces) and their firewall state.
    Connections(cmd::connections::Args),
    /// Turn the firewall on or off for one connection.
    Firewall(cmd::firewall::Args),
    /// Show the running daemon's counters, log counters and open ports (--watch: live).
    Stats(cmd::stats::Args),
    /// Show or change the firewall log settings (pfirewall.log, size cap).
    Log(cmd::log::Args),
    /// Install, remove, start or stop `v6fw run` as a Windows service.
    Service(cmd::service::Args),
    /// Print a shell completion script (bash, zsh or fish) to stdout.
    Completions(cmd::completions::Args),
    /// Write the man pages of every command and subcommand to a directory.
    Man(cmd::man::Args),
}

impl Command {
    /// Whether `--json` was given: then an error is printed as JSON too.
    pub fn json(&self) -> bool {
        match self {
            Command::Replay(a) => a.json,
            Command::Run(a) => a.json,
            Command::Stats(a) => a.json,
            Command::Connections(a) => a.json,
            Command::Check(a) => a.json,
            Command::Ports(a) => matches!(a.action, cmd::ports::Action::List { json: true, .. }),
            Command::Log(a) => matches!(a.action, cmd::log::Action::Show { json: true, .. }),
            Command::Load(_)
            | Command::Reload(_)
            | Command::Firewall(_)
            | Command::Completions(_)
            | Command::Service(_)
            | Command::Man(_) => false,
        }
    }
}

/// Parses the command line, runs the subcommand, maps an error to exit code 1
/// (or the code the subcommand asks for). With `--json`, errors go to stderr
/// as one JSON object ([`crate::output::error_json`]), command-line errors
/// included.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() && std::env::args_os().any(|a| a == "--json") => {
            crate::output::write_error_json(&crate::output::usage_error_json(&e.to_string()));
            return ExitCode::from(USAGE_EXIT);
        }
        Err(e) => e.exit(),
    };
    let json = cli.command.json();
    let result = match cli.command {
        Command::Replay(args) => cmd::replay::run(args),
        Command::Run(args) => cmd::run::run(args),
        Command::Ports(args) => cmd::ports::run(args),
        Command::Check(args) => cmd::check::run(args),
        Command::Load(args) => cmd::load::run(args),
        Command::Reload(args) => cmd::load::reload(args),
        Command::Connections(args) => cmd::connections::run(args),
        Command::Firewall(args) => cmd::firewall::run(args),
        Command::Stats(args) => cmd::stats::run(args),
        Command::Log(args) => cmd::log::run(args),
        Command::Service(args) => cmd::service::run(args),
        Command::Completions(args) => cmd::completions::run(args),
        Command::Man(args) => cmd::man::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) if json => {
            crate::output::write_error_json(&crate::output::error_json(&e));
            ExitCode::FAILURE
        }
        Err(e) => {
            // Not eprintln!: a closed stderr must not turn an error into a panic.
            let _ = writeln!(std::io::stderr(), "v6fw: {}", crate::output::describe(&e));
            ExitCode::FAILURE
        }
    }
}
