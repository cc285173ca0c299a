//! `v6fw service install|uninstall|start|stop`: `v6fw run` as a Windows
//! service (service `v6fw`, LocalSystem, started at boot), and the entry
//! point the service control manager starts (`v6fw service dispatch RUN-ARGS`).
//!
//! The service runs exactly `v6fw run` with the arguments given at install
//! (`v6fw service install -- --open 3389/tcp`); its Stop and Shutdown
//! controls take the path Ctrl-C takes (`privilege::request_stop`, Windows only): the
//! handle is shut down, the workers finish their batch, the totals are
//! logged. Its standard error (the daemon's log) goes to `service.log` in
//! the state directory. `install` refuses an exe in a folder that users who
//! are not administrators may write (`service_install_check.rs`).

use std::ffi::OsString;
use std::process::ExitCode;

/// Arguments of `v6fw service`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// What to do with the service.
    #[command(subcommand)]
    pub action: Action,
}

/// What `v6fw service` does.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Action {
    /// Install the service `v6fw` (LocalSystem, automatic start) running
    /// `v6fw run RUN-ARGS`, e.g. `v6fw service install -- --open 3389/tcp`.
    /// Refused when v6fw.exe's folder or a file in it is writable by users
    /// who are not administrators: put v6fw.exe, WinDivert.dll and
    /// WinDivert64.sys in C:\Program Files\v6fw.
    Install {
        /// Install even though v6fw.exe's folder (or a file in it) can be
        /// written by users who are not administrators, who could then run
        /// their code as SYSTEM: warns instead of refusing.
        #[arg(long)]
        force: bool,
        /// Arguments for `v6fw run`, after `--`; checked now.
        #[arg(last = true, value_name = "RUN-ARGS")]
        run: Vec<OsString>,
    },
    /// Stop (if it runs) and remove the service.
    Uninstall,
    /// Start the installed service.
    Start,
    /// Stop the service the way Ctrl-C stops `v6fw run`, and wait for it.
    Stop,
    /// The service's entry point (the service control manager runs it).
    #[command(hide = true)]
    Dispatch {
        /// Arguments for `v6fw run`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        run: Vec<OsString>,
    },
}

/// Parses `run` as the arguments of `v6fw run`.
#[cfg(any(windows, test))]
pub fn parse_run_args(run: &[OsString]) -> anyhow::Result<super::run::Args> {
    use clap::{FromArgMatches, Parser};

    /// `v6fw run`'s arguments alone.
    #[derive(Debug, Parser)]
    #[command(name = "v6fw run")]
    struct RunOnly {
        #[command(flatten)]
        args: super::run::Args,
    }
    let argv = std::iter::once(OsString::from("v6fw run")).chain(run.iter().cloned());
    let matches = <RunOnly as clap::CommandFactory>::command()
        .try_get_matches_from(argv)
        .map_err(|e| anyhow::anyhow!("the service's `v6fw run` arguments: {e}"))?;
    Ok(RunOnly::from_arg_matches(&matches)?.args)
}

/// Runs `v6fw service ...`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    os::run(args)
}

#[cfg(not(windows))]
mod os {
    use std::process::ExitCode;

    pub(super) fn run(_args: super::Args) -> anyhow::Result<ExitCode> {
        anyhow::bail!(
            "v6fw service is for Windows; elsewhere run `v6fw run` under the system's service manager (a systemd unit, for example)"
        )
    }
}

#[cfg(windows)]
#[path = "service_windows.rs"]
mod os;

#[cfg(windows)]
#[path = "service_install_check.rs"]
mod install_check;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn run_arguments_are_checked_at_install() {
        let ok: Vec<OsString> = ["--open", "22/tcp,53/udp", "--batch", "1"]
            .iter()
            .map(OsString::from)
            .collect();
        let args = parse_run_args(&ok).unwrap();
        assert_eq!(args.open.len(), 2);
        assert_eq!(args.batch, 1);
        for bad in [&["--bogus"][..], &["--batch", "0"], &["extra"]] {
            let bad: Vec<OsString> = bad.iter().map(OsString::from).collect();
            let e = parse_run_args(&bad).unwrap_err().to_string();
            assert!(e.contains("the service's `v6fw run` arguments"), "{e}");
        }
    }
}
