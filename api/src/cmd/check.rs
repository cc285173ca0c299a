//! `v6fw check FILE`: validate a policy file without touching anything (like
//! `nft -c -f`), print every error with its line and column (exit 1), or the
//! effective open set of every connection (exit 0).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use crate::output::shown;
use v6fw_api::store::from_toml;
use v6fw_engine::Policy;

use v6fw_api::control::protocol::PortsResult;
use v6fw_api::fw::OpenPorts;

/// Arguments of `v6fw check`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The policy file (the TOML of the state directory's policy.toml).
    pub file: PathBuf,
    /// Print the effective open sets as JSON.
    #[arg(long)]
    pub json: bool,
}

/// One error of a policy file: 1-based line and column (0: the whole file).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileError {
    /// The line, from 1; 0 when the error is about the file as a whole.
    pub line: usize,
    /// The column, from 1.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// The most errors reported for one file.
const MAX_ERRORS: usize = 100;

/// Every error of `text` that can be told apart: each one found is
/// reported, its line (or, for a table header, its whole table) is set
/// aside, and the rest is read again, so that one typo does not hide the
/// next. Line numbers stay those of the file, and the errors are in its
/// order (the engine's tables are read before the daemon's `[logging]`).
/// `[logging]`'s check beyond the TOML ([`v6fw_api::fw::check_log_settings`])
/// and the whole-policy checks run once the TOML reads.
pub fn errors(path: &Path, text: &str) -> Vec<FileError> {
    v6fw_api::fw::services::install();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut out = Vec::new();
    while out.len() < MAX_ERRORS {
        let joined = lines.join("\n");
        let e = match from_toml(&joined) {
            Ok(_) => break,
            Err(e) => e,
        };
        let message = e.message().trim().to_string();
        let Some(span) = e.span() else {
            out.push(FileError {
                line: 0,
                column: 0,
                message,
            });
            break;
        };
        let (line, column) = v6fw_api::store::line_col(&joined, span.start);
        out.push(FileError {
            line,
            column,
            message,
        });
        if !set_aside(&mut lines, line.saturating_sub(1)) {
            break;
        }
    }
    out.sort_by_key(|e| (e.line == 0, e.line, e.column));
    if out.is_empty() {
        // The TOML reads: the checks the store makes on the whole policy.
        if let Err(e) = v6fw_api::store::parse(path, text) {
            out.push(FileError {
                line: 0,
                column: 0,
                message: e.message().to_string(),
            });
        }
    }
    out
}

/// Comments out line `i`, or a table header and its table; whether
/// anything was left to comment out.
fn set_aside(lines: &mut [String], i: usize) -> bool {
    let is_header = |l: &str| l.trim_start().starts_with('[');
    let Some(first) = lines.get(i) else {
        return false;
    };
    if first.trim_start().starts_with('#') || first.trim().is_empty() {
        return false;
    }
    let header = is_header(first);
    for (n, l) in lines.iter_mut().enumerate().skip(i) {
        if n > i && (!header || is_header(l)) {
            break;
        }
        l.insert(0, '#');
    }
    true
}

/// Runs `v6fw check`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let file = &args.file;
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("{}: cannot read the policy file", file.display()))?;
    let errors = errors(file, &text);
    if !errors.is_empty() && args.json {
        // The one JSON error shape of every command, with each error listed.
        let mut v = crate::output::error_json(&anyhow::Error::new(
            v6fw_api::fw::FwError::InvalidArg(format!(
                "{} is not valid ({} errors); nothing was changed",
                file.display(),
                errors.len()
            )),
        ));
        if let Some(obj) = v.as_object_mut() {
            obj.insert("errors".into(), serde_json::json!(errors));
        }
        crate::output::write_error_json(&v);
        return Ok(ExitCode::FAILURE);
    }
    if !errors.is_empty() {
        for e in &errors {
            if e.line == 0 {
                eprintln!("{}: {}", file.display(), shown(&e.message));
            } else {
                let (line, column) = (e.line, e.column);
                eprintln!("{}:{line}:{column}: {}", file.display(), shown(&e.message));
            }
        }
        eprintln!(
            "v6fw: {} is not valid ({} error{}); nothing was changed",
            file.display(),
            errors.len(),
            if errors.len() == 1 { "" } else { "s" }
        );
        return Ok(ExitCode::FAILURE);
    }
    let policy = v6fw_api::store::parse(file, &text)?.policy;
    print_effective(&policy, args.json, &format!("{} is valid", file.display()));
    Ok(ExitCode::SUCCESS)
}

/// Prints the global pairs and the effective open set of every connection
/// (`--json`: one object), after `title` in the text form.
fn print_effective(policy: &Policy, json: bool, title: &str) {
    let global = PortsResult::from(&OpenPorts::globals(policy));
    let conns: Vec<(String, PortsResult)> = policy
        .connections
        .values()
        .map(|c| {
            (
                c.id.clone(),
                PortsResult::from(&OpenPorts::effective(policy, c)),
            )
        })
        .collect();
    if json {
        let connections: serde_json::Map<String, serde_json::Value> = conns
            .iter()
            .map(|(id, p)| (id.clone(), serde_json::json!(p.ports)))
            .collect();
        let v = serde_json::json!({
            "valid": true,
            "global": global.ports,
            "connections": connections,
        });
        println!("{v}");
        return;
    }
    println!("{title}");
    println!("global:");
    super::ports::print_ports(&global.ports);
    for (id, p) in &conns {
        let c = policy.connections.get(id);
        let off = c.is_some_and(|c| !c.enabled);
        println!(
            "connection {id}{}:",
            if off {
                " (firewall off: everything is accepted)"
            } else {
                ""
            }
        );
        super::ports::print_ports(&p.ports);
    }
}
