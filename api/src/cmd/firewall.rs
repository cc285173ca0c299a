//! `v6fw firewall enable|disable --connection ID`: the per-connection switch.

use std::process::ExitCode;

use crate::cmd::ports::Where;
use v6fw_api::control::client::decode;
use v6fw_api::control::protocol::{ChangedResult, Request};

/// Arguments of `v6fw firewall`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// On or off.
    #[command(subcommand)]
    pub action: Action,
}

/// The `v6fw firewall` actions.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Turn the firewall on for a connection.
    Enable {
        /// The connection (see `v6fw connections`).
        #[arg(long, value_name = "ID")]
        connection: String,
        /// Daemon socket and state directory.
        #[command(flatten)]
        place: Where,
    },
    /// Turn the firewall off for a connection: every inbound packet on it is accepted.
    Disable {
        /// The connection (see `v6fw connections`).
        #[arg(long, value_name = "ID")]
        connection: String,
        /// Daemon socket and state directory.
        #[command(flatten)]
        place: Where,
    },
}

/// Runs `v6fw firewall`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (req, place, word) = match args.action {
        Action::Enable { connection, place } => (Request::Enable { connection }, place, "on"),
        Action::Disable { connection, place } => (Request::Disable { connection }, place, "off"),
    };
    let id = match &req {
        Request::Enable { connection } | Request::Disable { connection } => connection.clone(),
        _ => String::new(),
    };
    let (v, route) = place.run(&req)?;
    let r: ChangedResult = decode(v)?;
    let id = crate::output::shown(&id);
    if r.changed {
        println!("firewall {word} for connection {id}{}", place.note(route));
    } else {
        println!("firewall was already {word} for connection {id}; nothing changed");
    }
    Ok(ExitCode::SUCCESS)
}
