//! `v6fw connections`: the connections (network interfaces) and their state.

use std::process::ExitCode;

use crate::cmd::ports::Where;
use v6fw_api::control::client::decode;
use v6fw_api::control::protocol::{ConnectionsResult, Request};

/// Arguments of `v6fw connections`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Daemon socket and state directory.
    #[command(flatten)]
    pub place: Where,
}

/// Runs `v6fw connections`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let r: ConnectionsResult = decode(args.place.run(&Request::Connections)?.0)?;
    if args.json {
        println!("{}", serde_json::to_string(&r)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<16} {:>6} {:<9} {:<24} IGNORED GLOBAL",
        "ID", "INDEX", "FIREWALL", "OPEN"
    );
    for c in &r.connections {
        let open = if c.open.is_empty() {
            "-".to_string()
        } else {
            c.open.join(",")
        };
        let ignored = if c.ignored.is_empty() {
            "-".to_string()
        } else {
            c.ignored.join(",")
        };
        let fw = if c.firewalled { "on" } else { "off" };
        println!(
            "{:<16} {:>6} {:<9} {:<24} {ignored}",
            crate::output::shown(&c.id),
            c.if_index,
            fw,
            open
        );
    }
    Ok(ExitCode::SUCCESS)
}
