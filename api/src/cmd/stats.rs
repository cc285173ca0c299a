//! `v6fw stats`: the running daemon's verdict counters per reason.

use std::process::ExitCode;

use crate::cmd::ports::Where;
use crate::control::client::Client;
use crate::control::protocol::{Request, StatsResult};
use crate::fw::FwError;

/// Arguments of `v6fw stats`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Daemon socket (the state directory is not used).
    #[command(flatten)]
    pub place: Where,
}

/// Runs `v6fw stats`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Some(mut client) = Client::connect(&args.place.socket)? else {
        return Err(FwError::Fail(format!(
            "no v6fw daemon is running on {}: start it with `v6fw run`, or pass --socket",
            args.place.socket.display()
        ))
        .into());
    };
    let s: StatsResult = client.request(&Request::Stats)?;
    if args.json {
        println!("{}", serde_json::to_string(&s)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "packets {}  accepted {}  dropped {}",
        s.packets, s.accepted, s.dropped
    );
    for r in &s.reasons {
        println!("  {:<7} {:<22} {}", r.verdict, r.reason, r.count);
    }
    Ok(ExitCode::SUCCESS)
}
