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

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Decide every packet of a pcap/pcapng capture offline and report.
    Replay(cmd::replay::Args),
    /// Filter live (needs root / Administrator): NFQUEUE on Linux, WinDivert on Windows.
    Run(cmd::run::Args),
    /// List, open and close port/protocol pairs (globally or per connection).
    Ports(cmd::ports::Args),
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

/// Parses the command line, runs the subcommand, maps an error to exit code 1
/// (or the code the subcommand asks for).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Replay(args) => cmd::replay::run(args),
        Command::Run(args) => cmd::run::run(args),
        Command::Ports(args) => cmd::ports::run(args),
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
        Err(e) => {
            // Not eprintln!: a closed stderr must not turn an error into a panic.
            let _ = writeln!(std::io::stderr(), "v6fw: {e:#}");
            ExitCode::FAILURE
        }
    }
}
