//! `v6fw load FILE`: replace the whole policy at once (like `nft -f`), and
//! `v6fw reload`: have the daemon re-read its own policy file.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use super::ports::Where;
use v6fw_api::control::client::{decode, Client};
use v6fw_api::control::protocol::{ChangedResult, Request};
use v6fw_api::fw::FwError;

/// Arguments of `v6fw load`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The policy file to load (the TOML of the state directory's policy.toml).
    pub file: PathBuf,
    /// Daemon socket and state directory.
    #[command(flatten)]
    pub place: Where,
}

/// Arguments of `v6fw reload`.
#[derive(Debug, clap::Args)]
pub struct ReloadArgs {
    /// Daemon socket and state directory.
    #[command(flatten)]
    pub place: Where,
}

/// Runs `v6fw load`: the file is checked here first (any error refuses the
/// whole file), then sent to the daemon, which checks it again and applies
/// it in one durable write and one publish; with no daemon the state
/// directory's policy file is replaced under its lock.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let file = &args.file;
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("{}: cannot read the policy file", file.display()))?;
    let max = v6fw_api::store::MAX_POLICY_BYTES;
    if text.len() > max {
        anyhow::bail!(
            "{} is {} bytes, more than v6fw loads ({max}): nothing was loaded; write runs of ports as ranges (\"6000:6999/tcp\" = \"name\")",
            file.display(),
            text.len()
        );
    }
    let errors = super::check::errors(file, &text);
    if let Some(first) = errors.first() {
        let at = if first.line == 0 {
            String::new()
        } else {
            format!(" at line {}, column {}", first.line, first.column)
        };
        anyhow::bail!(
            "{} is not valid{at}: {}; nothing was loaded (`v6fw check {}` lists every error)",
            file.display(),
            first.message,
            file.display()
        );
    }
    let req = Request::Load {
        policy: text,
        source: file.display().to_string(),
    };
    let (v, route) = args.place.run(&req)?;
    let r: ChangedResult = decode(v)?;
    if r.changed {
        println!(
            "loaded {}: the policy was replaced{}",
            file.display(),
            args.place.note(route)
        );
    } else {
        println!(
            "loaded {}: the policy was already that; nothing changed",
            file.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `v6fw reload`: the daemon re-reads its policy file (as SIGHUP).
pub fn reload(args: ReloadArgs) -> anyhow::Result<ExitCode> {
    let socket = &args.place.daemon_socket()?;
    let mut client = Client::connect(socket)?.ok_or_else(|| {
        FwError::Fail(format!(
            "no daemon answers at {}: nothing to reload (a daemon reads its policy file when `v6fw run` starts; choose the daemon with --socket)",
            socket.display()
        ))
    })?;
    let r: ChangedResult = client.request(&Request::Reload)?;
    if r.changed {
        println!(
            "the daemon at {} reloaded its policy file",
            socket.display()
        );
    } else {
        println!(
            "the daemon at {} reloaded its policy file; nothing changed",
            socket.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
