//! `v6fw completions SHELL`: a completion script for bash, zsh or fish,
//! generated from the same clap definitions that parse the command line, so it
//! can never offer a subcommand or option that does not exist.

use std::io::{self, Write};
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;

/// Arguments of `v6fw completions`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: CompletionShell,
}

/// The shells v6fw writes completions for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CompletionShell {
    /// GNU bash (install to /usr/share/bash-completion/completions/v6fw).
    Bash,
    /// zsh (install as `_v6fw` in a directory of `$fpath`).
    Zsh,
    /// fish (install to ~/.config/fish/completions/v6fw.fish).
    Fish,
}

impl From<CompletionShell> for Shell {
    fn from(s: CompletionShell) -> Shell {
        match s {
            CompletionShell::Bash => Shell::Bash,
            CompletionShell::Zsh => Shell::Zsh,
            CompletionShell::Fish => Shell::Fish,
        }
    }
}

/// Writes the completion script of `shell` for the `v6fw` command to `out`.
pub fn write(shell: CompletionShell, out: &mut dyn Write) {
    let mut cmd = Cli::command();
    clap_complete::generate(Shell::from(shell), &mut cmd, "v6fw", out);
}

/// Prints the script to stdout.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut buf = Vec::new();
    write(args.shell, &mut buf);
    let mut stdout = io::stdout().lock();
    match stdout.write_all(&buf).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        // `v6fw completions bash | head` is not an error.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(anyhow::Error::new(e).context("cannot write the completion script")),
    }
}
