//! Where `v6fw run`'s own log lines go, and which: the journal under
//! systemd, stderr otherwise; the level from `-v`/`-q`, else `RUST_LOG`,
//! else `info`.
//!
//! systemd sets `JOURNAL_STREAM=DEV:INODE` to the stream it connected
//! stdout/stderr to; only when stderr is still that stream (not redirected
//! by a wrapper script) do lines go to the journal natively, with their
//! priority and fields (`tracing-journald`). A journal that cannot be
//! reached falls back to stderr.

use std::io::{self, IsTerminal};

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

/// Where the lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    /// The systemd journal, natively.
    Journal,
    /// Standard error, as text.
    Stderr,
}

/// The sink for a `JOURNAL_STREAM` value and stderr's `(device, inode)`:
/// the journal only when they name the same stream.
pub fn sink(journal_stream: Option<&str>, stderr: Option<(u64, u64)>) -> Sink {
    let parsed = journal_stream.and_then(|v| {
        let (dev, ino) = v.trim().split_once(':')?;
        Some((dev.parse::<u64>().ok()?, ino.parse::<u64>().ok()?))
    });
    match (parsed, stderr) {
        (Some(j), Some(s)) if j == s => Sink::Journal,
        _ => Sink::Stderr,
    }
}

/// The level filter: `-q` (warn), `-qq` (error), `-v` (debug), `-vv`
/// (trace) win over `RUST_LOG`, which wins over the default `info`. A
/// `RUST_LOG` that does not parse gives `info` and its error, to log.
pub fn filter(verbose: u8, quiet: u8, rust_log: Option<&str>) -> (EnvFilter, Option<String>) {
    let flag = match i16::from(verbose) - i16::from(quiet) {
        0 => None,
        n if n <= -2 => Some("error"),
        -1 => Some("warn"),
        1 => Some("debug"),
        _ => Some("trace"),
    };
    if verbose > 0 || quiet > 0 {
        return (EnvFilter::new(flag.unwrap_or("info")), None);
    }
    match rust_log.filter(|v| !v.trim().is_empty()) {
        Some(v) => match EnvFilter::try_new(v) {
            Ok(f) => (f, None),
            Err(e) => (
                EnvFilter::new("info"),
                Some(format!(
                    "RUST_LOG={v:?} is not a valid filter ({e}): logging at info"
                )),
            ),
        },
        None => (EnvFilter::new("info"), None),
    }
}

/// stderr's `(device, inode)`, if it is open.
#[cfg(unix)]
fn stderr_id() -> Option<(u64, u64)> {
    let st = rustix::fs::fstat(io::stderr()).ok()?;
    // The field types differ between targets (u32/u64/i64): widen them.
    #[allow(clippy::useless_conversion, clippy::unnecessary_cast)]
    Some((st.st_dev as u64, st.st_ino as u64))
}

#[cfg(not(unix))]
fn stderr_id() -> Option<(u64, u64)> {
    None
}

/// Installs the journal's subscriber with `filter`, if the journal answers.
#[cfg(unix)]
fn init_journal(filter: EnvFilter) -> io::Result<()> {
    let layer = tracing_journald::layer()?.with_syslog_identifier("v6fw".into());
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(layer)
        .try_init();
    Ok(())
}

#[cfg(not(unix))]
fn init_journal(_filter: EnvFilter) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

/// Installs the subscriber for `v6fw run`; returns where the lines go.
pub fn init(verbose: u8, quiet: u8) -> Sink {
    let rust_log = std::env::var("RUST_LOG").ok();
    let (journal_filter, bad_env) = filter(verbose, quiet, rust_log.as_deref());
    let mut fallback = None;
    if sink(std::env::var("JOURNAL_STREAM").ok().as_deref(), stderr_id()) == Sink::Journal {
        match init_journal(journal_filter) {
            Ok(()) => {
                if let Some(e) = bad_env {
                    tracing::warn!("{e}");
                }
                return Sink::Journal;
            }
            Err(e) => {
                fallback = Some(format!(
                    "cannot log to the journal ({e}): logging to stderr"
                ))
            }
        }
    }
    let (filter, _) = filter(verbose, quiet, rust_log.as_deref());
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(io::stderr)
                .with_ansi(io::stderr().is_terminal())
                // A closed stderr (`2>&1 | tee`, tee gone) loses log lines;
                // the default would report that with eprintln!, which panics
                // on EPIPE.
                .log_internal_errors(false),
        )
        .try_init();
    for e in bad_env.iter().chain(fallback.iter()) {
        tracing::warn!("{e}");
    }
    Sink::Stderr
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_journal_only_when_stderr_is_its_stream() {
        assert_eq!(sink(Some("8:1234"), Some((8, 1234))), Sink::Journal);
        // A wrapper redirected stderr: JOURNAL_STREAM is stale.
        assert_eq!(sink(Some("8:1234"), Some((8, 99))), Sink::Stderr);
        assert_eq!(sink(Some("garbage"), Some((8, 1234))), Sink::Stderr);
        assert_eq!(sink(Some(""), Some((0, 0))), Sink::Stderr);
        assert_eq!(sink(None, Some((8, 1234))), Sink::Stderr);
        assert_eq!(sink(Some("8:1234"), None), Sink::Stderr, "stderr closed");
    }

    #[cfg(unix)]
    #[test]
    fn a_fake_journal_stream_falls_back_to_stderr() {
        let real = stderr_id().expect("the test's stderr is open");
        let fake = format!("{}:{}", real.0, real.1.wrapping_add(1));
        assert_eq!(sink(Some(&fake), Some(real)), Sink::Stderr);
        let same = format!("{}:{}", real.0, real.1);
        assert_eq!(sink(Some(&same), stderr_id()), Sink::Journal);
    }

    #[test]
    fn flags_win_over_rust_log_which_wins_over_info() {
        let f = |v, q, env| filter(v, q, env).0.to_string();
        assert_eq!(f(0, 0, None), "info");
        assert_eq!(f(0, 0, Some("v6fw_api=trace")), "v6fw_api=trace");
        assert_eq!(f(1, 0, Some("v6fw_api=trace")), "debug");
        assert_eq!(f(2, 0, None), "trace");
        assert_eq!(f(0, 1, Some("trace")), "warn");
        assert_eq!(f(0, 2, None), "error");
        assert_eq!(f(0, 5, None), "error");
        assert_eq!(f(1, 1, Some("trace")), "info", "-v -q cancel out");
        let (bad, why) = filter(0, 0, Some("v6fw=[bad"));
        assert_eq!(bad.to_string(), "info");
        assert!(why.unwrap().contains("RUST_LOG"));
    }
}
