//! `v6fw replay` (to be written).

use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `v6fw replay`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The pcap or pcapng file.
    pub capture: PathBuf,
}

/// Runs `v6fw replay`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("replay is not written yet")
}
