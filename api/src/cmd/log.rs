//! `v6fw log set|show`: the firewall log's settings (`INetFwV6Mgr`'s
//! `LogDroppedPackets`, `LogConnections`, `LogfilePath`,
//! `LogfileMaximumSize`).
//!
//! Like `v6fw ports`, it goes through the daemon when one answers on
//! `--socket` (a running daemon follows the change within about half a
//! second, without a restart) and edits `policy.toml` in `--state-dir`
//! otherwise; changing needs root either way.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::cmd::ports::Where;
use v6fw_api::control::client::decode;
use v6fw_api::control::protocol::{ChangedResult, LogSettingsResult, Request};
use v6fw_api::fw::FwError;

/// `on` or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    /// Log.
    On,
    /// Do not log.
    Off,
}

impl Switch {
    fn on(self) -> bool {
        self == Switch::On
    }
}

/// Arguments of `v6fw log`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub action: Action,
}

/// The `v6fw log` actions.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Change the log settings, e.g. `v6fw log set --dropped on --max-size 4MiB`.
    Set {
        /// Log every dropped packet (Windows: LogDroppedPackets).
        #[arg(long, value_name = "on|off")]
        dropped: Option<Switch>,
        /// Log every accepted new connection: TCP SYNs and UDP flows, in and
        /// out (Windows: LogConnections).
        #[arg(long, value_name = "on|off")]
        connections: Option<Switch>,
        /// The log file (made absolute here; the daemon must be able to
        /// create it). Default: /var/log/v6fw/pfirewall.log (DIR/pfirewall.log with --state-dir DIR).
        #[arg(long, value_name = "FILE", conflicts_with = "default_path")]
        path: Option<PathBuf>,
        /// Go back to the default file (/var/log/v6fw/pfirewall.log, or
        /// DIR/pfirewall.log with --state-dir DIR).
        #[arg(long)]
        default_path: bool,
        /// Size cap: bytes (4096) or with a unit (4KiB, 4MiB, 1GiB; K, M, G,
        /// KB, MB, GB mean the same powers of 1024); at least 1KiB. At the
        /// cap the file is renamed to FILE.old and a new one begun.
        #[arg(long, value_name = "SIZE", value_parser = v6fw_api::log::parse_size)]
        max_size: Option<u64>,
        /// Daemon socket and state directory.
        #[command(flatten)]
        place: Where,
    },
    /// Show the log settings.
    Show {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Daemon socket and state directory.
        #[command(flatten)]
        place: Where,
    },
}

/// `path` made absolute against the current directory.
fn absolute(path: &Path) -> Result<PathBuf, FwError> {
    std::path::absolute(path).map_err(|e| FwError::io("make an absolute path of", path, e))
}

/// Runs `v6fw log`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.action {
        Action::Set {
            dropped,
            connections,
            path,
            default_path,
            max_size,
            place,
        } => {
            if dropped.is_none()
                && connections.is_none()
                && path.is_none()
                && !default_path
                && max_size.is_none()
            {
                return Err(FwError::InvalidArg(
                    "nothing to set: give --dropped on|off, --connections on|off, --path FILE, --default-path or --max-size SIZE".into(),
                )
                .into());
            }
            let path = match path {
                Some(p) => Some(absolute(&p)?.display().to_string()),
                None => None,
            };
            let req = Request::SetLog {
                dropped: dropped.map(Switch::on),
                connections: connections.map(Switch::on),
                path,
                default_path,
                max_size,
            };
            let (v, route) = place.run(&req)?;
            let r: ChangedResult = decode(v)?;
            if r.changed {
                println!("log settings changed{}", place.note(route));
            } else {
                println!("log settings were already so; nothing changed");
            }
            show(&place, false)?;
        }
        Action::Show { json, place } => show(&place, json)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

fn show(place: &Where, json: bool) -> Result<(), FwError> {
    let (v, _) = place.run(&Request::LogSettings)?;
    let s: LogSettingsResult = decode(v)?;
    if json {
        let text = serde_json::to_string(&s)
            .map_err(|e| FwError::Unexpected(format!("cannot encode the settings: {e}")))?;
        println!("{text}");
        return Ok(());
    }
    println!("dropped packets  {}", on_off(s.dropped));
    println!("connections      {}", on_off(s.connections));
    let file = s.file.as_deref().unwrap_or("-");
    let note = if s.path.is_none() { " (default)" } else { "" };
    println!("file             {file}{note}");
    println!(
        "max size         {} bytes ({} KiB)",
        s.max_size,
        s.max_size / 1024
    );
    Ok(())
}
