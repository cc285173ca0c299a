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

mod split;

/// Every error of `text` that can be told apart, in the file's order (the
/// engine's tables are read before the daemon's `[logging]`, but the errors
/// are sorted by line). `[logging]`'s check beyond the TOML
/// ([`v6fw_api::fw::check_log_settings`]) and the whole-policy checks run
/// once the TOML reads.
///
/// A file that reads is read once. One that does not is read again piece by
/// piece ([`split`]: each table, a long table in runs of at most
/// [`split::CHUNK_LINES`] lines), each piece after the tables it is inside
/// of, as context: each error found is reported, its line (or, for a table
/// header, its whole table) is set aside, and the piece is read again, so
/// that one typo does not hide the next. The work is linear in the file:
/// each byte is read a bounded number of times however many errors there
/// are (before issue 29 the whole file was read again per error: a 1.4 MB
/// file with 120 errors took 5 s). What no piece shows (a key written twice
/// in two tables far apart) is still reported, from the whole file's first
/// error.
pub fn errors(path: &Path, text: &str) -> Vec<FileError> {
    errors_with(path, text, &mut |t| from_toml(t).map(|_| ()))
}

/// [`errors`] with `read` as the TOML reader (a test counts what it reads).
fn errors_with(
    path: &Path,
    text: &str,
    read: &mut dyn FnMut(&str) -> Result<(), toml::de::Error>,
) -> Vec<FileError> {
    v6fw_api::fw::services::install();
    let first = match read(text) {
        Ok(()) => {
            // The TOML reads: the checks the store makes on the whole policy.
            return match v6fw_api::store::parse(path, text) {
                Ok(_) => Vec::new(),
                Err(e) => vec![FileError {
                    line: 0,
                    column: 0,
                    message: e.message().to_string(),
                }],
            };
        }
        Err(e) => e,
    };
    let mut out = vec![located(text, &first, |line| line)];
    // One error per place: the whole file's first is found again in its piece.
    let mut seen: std::collections::HashSet<(usize, usize)> =
        out.iter().map(|e| (e.line, e.column)).collect();
    let lines: Vec<&str> = text.lines().collect();
    let sections = split::sections(&lines);
    // Each section's first run once its errors are set aside: the context
    // of its later runs and of the sections inside it.
    let mut cleaned: Vec<Option<Vec<Line>>> = vec![None; sections.len()];
    'all: for (si, sec) in sections.iter().enumerate() {
        let context: Vec<Line> = sections
            .iter()
            .zip(&cleaned)
            .take(si)
            .filter(|(other, _)| sec.is_inside(other))
            .filter_map(|(_, c)| c.clone())
            .flatten()
            .collect();
        for (ri, (from, to)) in sec.runs().enumerate() {
            if out.len() >= MAX_ERRORS {
                break 'all;
            }
            let mut doc = context.clone();
            if ri > 0 {
                let first = cleaned.get(si).cloned().flatten().unwrap_or_default();
                // A header set aside sets its whole table aside.
                let header = lines.get(sec.start).is_some_and(|l| split::is_header(l));
                if header && first.first().is_some_and(|l| l.text.starts_with('#')) {
                    break;
                }
                doc.extend(first);
            }
            let own = doc.len();
            doc.extend(
                lines
                    .get(from..to)
                    .unwrap_or_default()
                    .iter()
                    .enumerate()
                    .map(|(i, t)| Line {
                        no: from + i + 1,
                        text: (*t).to_string(),
                    }),
            );
            // One more than is missing: the piece may find the first again.
            let found = read_piece(&mut doc, read, MAX_ERRORS + 1 - out.len());
            out.extend(found.into_iter().filter(|e| {
                (e.line == 0 || (from < e.line && e.line <= to)) && seen.insert((e.line, e.column))
            }));
            if ri == 0 {
                if let Some(c) = cleaned.get_mut(si) {
                    *c = Some(doc.split_off(own));
                }
            }
        }
    }
    out.sort_by_key(|e| (e.line == 0, e.line, e.column));
    out.truncate(MAX_ERRORS);
    out
}

/// One line of a piece being read: its line in the file (from 1) and its
/// text (commented out once set aside).
#[derive(Debug, Clone)]
struct Line {
    no: usize,
    text: String,
}

/// Reads `doc` again and again, setting each error's line aside, until it
/// reads, nothing is left to set aside, or `budget` errors were found.
fn read_piece(
    doc: &mut [Line],
    read: &mut dyn FnMut(&str) -> Result<(), toml::de::Error>,
    budget: usize,
) -> Vec<FileError> {
    let mut out = Vec::new();
    while out.len() < budget {
        let joined = doc
            .iter()
            .map(|l| l.text.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        let e = match read(&joined) {
            Ok(()) => break,
            Err(e) => e,
        };
        let at = located(&joined, &e, |i| {
            doc.get(i.wrapping_sub(1)).map_or(0, |l| l.no)
        });
        let index = e
            .span()
            .map(|s| v6fw_api::store::line_col(&joined, s.start).0);
        out.push(at);
        // Without a place there is nothing to set aside.
        if !index.is_some_and(|i| set_aside(doc, i.saturating_sub(1))) {
            break;
        }
    }
    out
}

/// `e` (read from `text`) as a [`FileError`], its line through `file_line`
/// (the text's line, from 1, to the file's).
fn located(text: &str, e: &toml::de::Error, file_line: impl Fn(usize) -> usize) -> FileError {
    let message = e.message().trim().to_string();
    match e.span() {
        Some(span) => {
            let (line, column) = v6fw_api::store::line_col(text, span.start);
            FileError {
                line: file_line(line),
                column,
                message,
            }
        }
        None => FileError {
            line: 0,
            column: 0,
            message,
        },
    }
}

/// Comments out line `i`, or a table header and its table; whether
/// anything was left to comment out.
fn set_aside(lines: &mut [Line], i: usize) -> bool {
    let Some(first) = lines.get(i) else {
        return false;
    };
    if first.text.trim_start().starts_with('#') || first.text.trim().is_empty() {
        return false;
    }
    let header = split::is_header(&first.text);
    for (n, l) in lines.iter_mut().enumerate().skip(i) {
        if n > i && (!header || split::is_header(&l.text)) {
            break;
        }
        l.text.insert(0, '#');
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    /// `[globals]` with `n` good pairs, every `every`-th line from `from`
    /// on a backwards range instead; the file and its bad lines (from 1).
    fn file(n: usize, from: usize, every: usize) -> (String, Vec<usize>) {
        let mut text = String::from("# a policy\nstate = true\n[globals]\n");
        let mut bad = Vec::new();
        for i in 0..n {
            let line = i + 4;
            if i >= from && (i - from).is_multiple_of(every) {
                text.push_str(&format!("\"{}:1/tcp\" = \"x\"\n", i + 2));
                bad.push(line);
            } else {
                text.push_str(&format!("\"{}/tcp\" = \"x\"\n", i + 1));
            }
        }
        (text, bad)
    }

    /// The errors of `text` and how many bytes were read to find them.
    fn counted(text: &str) -> (Vec<FileError>, usize) {
        let mut bytes = 0;
        let errors = errors_with(Path::new("p.toml"), text, &mut |t| {
            bytes += t.len();
            from_toml(t).map(|_| ())
        });
        (errors, bytes)
    }

    /// Issue 29: each error used to cost a reading of the whole file (100
    /// errors: the file read 101 times). Now the work is linear in the file:
    /// the errors spread over it, or all in one place.
    #[test]
    fn finding_many_errors_reads_the_file_a_bounded_number_of_times() {
        for (from, every) in [(0, 160), (5000, 1)] {
            let (text, bad) = file(20_000, from, every);
            assert!(bad.len() >= 120);
            let (errors, bytes) = counted(&text);
            let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
            assert_eq!(
                lines,
                bad[..MAX_ERRORS],
                "every error, in order, up to the cap"
            );
            assert!(
                errors[0].message.contains("is backwards"),
                "{:?}",
                errors[0]
            );
            let times = bytes as f64 / text.len() as f64;
            assert!(
                bytes <= 6 * text.len(),
                "read {times:.1} times the file's size (from {from}, every {every})"
            );
        }
        // A good file is read once.
        let (good, _) = file(20_000, usize::MAX, 1);
        let (errors, bytes) = counted(&good);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(bytes, good.len());
    }

    #[test]
    fn pieces_are_read_in_their_tables_context() {
        let mut text =
            String::from("[connections.eth0]\nid = \"eth0\"\n\n[connections.eth0.open]\n");
        for p in 1..=600 {
            text.push_str(&format!("\"{p}/udp\" = \"x\"\n"));
        }
        text.push_str("\"0/udp\" = \"zero\"\n[globl]\n");
        for p in 1..=600 {
            text.push_str(&format!("x{p} = 1\n"));
        }
        let (errors, _) = counted(&text);
        let shown: Vec<(usize, &str)> = errors
            .iter()
            .map(|e| (e.line, e.message.as_str()))
            .collect();
        assert_eq!(
            shown.len(),
            2,
            "no missing id, one error for [globl]: {shown:?}"
        );
        assert_eq!(shown[0].0, 605);
        assert!(shown[0].1.contains("port 0"), "{shown:?}");
        assert_eq!(shown[1].0, 606);
        assert!(shown[1].1.contains("unknown field `globl`"), "{shown:?}");
    }
}
