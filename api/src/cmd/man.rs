//! `v6fw man DIR`: writes the man pages, one per command and subcommand
//! (`v6fw.1`, `v6fw-ports.1`, `v6fw-ports-open.1`, ...), generated from the clap
//! definitions, so the pages say exactly what `--help` says.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::CommandFactory;

use crate::cli::Cli;

/// Arguments of `v6fw man`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The directory to write the pages to (created if missing), e.g.
    /// /usr/local/share/man/man1.
    pub dir: PathBuf,
}

/// Writes every page into `dir` and returns their file names, in order.
pub fn write_all(dir: &Path) -> anyhow::Result<Vec<String>> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("{}: cannot create the man page directory", dir.display()))?;
    let mut cmd = Cli::command();
    cmd.build();
    let mut written = Vec::new();
    write_tree(&cmd, "v6fw", dir, &mut written)?;
    Ok(written)
}

/// Writes the page of `cmd` (named `name`) and those of its subcommands.
fn write_tree(
    cmd: &clap::Command,
    name: &str,
    dir: &Path,
    written: &mut Vec<String>,
) -> anyhow::Result<()> {
    // The page's title is the full command name, as `git-commit(1)`.
    let page = cmd.clone().name(name.to_string());
    let mut buf = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut buf)
        .with_context(|| format!("cannot render the man page of `{name}`"))?;
    let file = format!("{name}.1");
    let path = dir.join(&file);
    std::fs::write(&path, buf).with_context(|| format!("{}: cannot write", path.display()))?;
    written.push(file);
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        write_tree(sub, &format!("{name}-{}", sub.get_name()), dir, written)?;
    }
    Ok(())
}

/// Writes the pages and lists them.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    for file in write_all(&args.dir)? {
        println!("{}", args.dir.join(file).display());
    }
    Ok(ExitCode::SUCCESS)
}
