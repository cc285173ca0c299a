//! `v6fw replay CAPTURE`: what v6fw would decide for every frame of a capture,
//! without rights or a live network (SPEC.md, "Replay and the per-packet line").

use std::io::{self, BufWriter, IsTerminal, Write};
use std::net::Ipv6Addr;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use serde::Serialize;
use v6fw_capture::file::CaptureFile;
use v6fw_capture::replay::{replay, Interrupted, Prefix, ReplayOptions, Replayed};
use v6fw_engine::walk::{walk, Outcome};
use v6fw_engine::{Connection, Engine, HashKey, Policy, PortPair, ScopedPair, StateConfig, Totals};

use crate::cmd::explain;
use v6fw_api::log::{local_utc_offset, LogConfig, LogFilter, LogSender, LogSettings, LogWriter};

/// Arguments of `v6fw replay`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The pcap or pcapng file, gzip-compressed or not; `-` reads standard input.
    pub capture: PathBuf,
    /// Pairs open on the replay connection, e.g. `22/tcp,53/udp`; a pair
    /// for some sources only: `22/tcp@fd00::/8+2001:db8::/32`.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "PORT/PROTO[@PREFIX+...],..."
    )]
    pub open: Vec<ScopedPair>,
    /// Global pairs, e.g. `443/tcp` (reason `global_port`); scoped as in
    /// `--open`.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "PORT/PROTO[@PREFIX+...],..."
    )]
    pub global: Vec<ScopedPair>,
    /// Global pairs the replay connection ignores.
    #[arg(long, value_delimiter = ',', value_name = "PORT/PROTO,...")]
    pub ignore: Vec<PortPair>,
    /// A policy file (the TOML of `v6fw`'s state directory).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Which connection of the policy file the packets arrive on
    /// (default: its only connection, or a new one).
    #[arg(long, value_name = "ID")]
    pub connection: Option<String>,
    /// Sources inside this prefix are outbound (repeatable), e.g. `fd00::/8`.
    #[arg(long, value_name = "PREFIX")]
    pub local: Vec<Prefix>,
    /// Turn the connection's firewall off (reason `firewall_disabled`).
    #[arg(long)]
    pub disabled: bool,
    /// Do not track outbound flows (no `established`).
    #[arg(long)]
    pub no_state: bool,
    /// One line per frame: `frame verdict reason proto dport`, tab-separated.
    #[arg(long)]
    pub per_packet: bool,
    /// One line per frame with source, destination and source port added:
    /// `frame verdict reason proto dport src dst sport` (implies --per-packet).
    #[arg(long)]
    pub wide: bool,
    /// Explain frame N (from 1) as `tshark -V` dissects it: the link layer,
    /// each IPv6 header with its offset and fields, the upper layer, the
    /// flow-state and fragment lookups and the SPEC.md step that decided.
    #[arg(long, value_name = "N", conflicts_with_all = ["per_packet", "wide", "log"])]
    pub explain: Option<u64>,
    /// JSON output: the summary as one object; with --per-packet, one object
    /// per line; with --explain, the explanation.
    #[arg(long)]
    pub json: bool,
    /// Write a firewall log (Windows Firewall's `pfirewall.log` format) of the
    /// dropped packets to FILE.
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// With --log: also log each accepted new connection.
    #[arg(long, requires = "log")]
    pub log_connections: bool,
    /// With --log: the size cap, bytes (4096) or with a unit (4KiB, 4MiB,
    /// 1GiB; K, M, G, KB, MB, GB mean the same powers of 1024); at least
    /// 1KiB. The file is renamed to FILE.old at the cap.
    #[arg(long, requires = "log", value_name = "SIZE", value_parser = v6fw_api::log::parse_size, default_value_t = LogSettings::DEFAULT_MAX_SIZE)]
    pub log_max_size: u64,
}

/// The state tables' hash key in replay.
const REPLAY_HASH_KEY: u64 = 0x7636_6677_7265_706c;

/// The connection id replay uses when the policy names none.
const REPLAY_CONNECTION: &str = "replay";

/// Builds the policy and picks the connection the frames arrive on.
fn build_policy(args: &Args) -> anyhow::Result<(Policy, String)> {
    let mut policy = match &args.policy {
        Some(path) => load_policy(path)?,
        None => Policy::default(),
    };
    let id = match (&args.connection, policy.connections.len()) {
        (Some(id), _) => {
            policy.connection(id)?;
            id.clone()
        }
        (None, 1) => policy
            .connections
            .keys()
            .next()
            .cloned()
            .unwrap_or_else(|| REPLAY_CONNECTION.to_string()),
        (None, 0) => {
            policy.add_connection(Connection::new(REPLAY_CONNECTION, "replay", 0))?;
            REPLAY_CONNECTION.to_string()
        }
        (None, n) => anyhow::bail!(
            "the policy has {n} connections: choose one with --connection ID ({})",
            policy
                .connections
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    for p in &args.global {
        policy.open_global_from(p.pair, "replay", p.from.clone());
    }
    policy.state.enabled &= !args.no_state;
    // The API's message: the engine's, with the command that lists them.
    let conn = policy
        .connection_mut(&id)
        .map_err(|e| anyhow::anyhow!(v6fw_api::fw::FwError::from(e).message().to_string()))?;
    for p in &args.open {
        conn.open_port_from(p.pair, "replay", p.from.clone());
    }
    for pair in &args.ignore {
        conn.ignore_global(*pair);
    }
    conn.enabled &= !args.disabled;
    Ok((policy, id))
}

/// Reads a policy file (the format of the state directory's `policy.toml`),
/// naming the file, line and column on error. Its `[logging]` is checked
/// but not used: a replay logs with `--log`.
pub fn load_policy(path: &Path) -> anyhow::Result<Policy> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read the policy file", path.display()))?;
    Ok(v6fw_api::store::parse(path, &text)?.policy)
}

#[derive(Serialize)]
struct JsonLine {
    frame: u64,
    verdict: &'static str,
    reason: &'static str,
    proto: Option<u8>,
    dport: Option<u16>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    wide: Option<Wide>,
}

/// The columns `--wide` adds: `None` where the packet has no addresses or
/// no ports.
#[derive(Serialize)]
struct Wide {
    src: Option<Ipv6Addr>,
    dst: Option<Ipv6Addr>,
    sport: Option<u16>,
}

impl Wide {
    fn of(packet: &[u8], truncated: bool) -> Wide {
        let w = walk(packet, truncated);
        let placed = !matches!(w.outcome(), Outcome::Invalid(_));
        Wide {
            src: placed.then(|| Ipv6Addr::from(w.src())),
            dst: placed.then(|| Ipv6Addr::from(w.dst())),
            sport: w.ports().map(|(_, sport, _)| sport),
        }
    }
}

fn column<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

fn write_line(out: &mut impl Write, r: &Replayed<'_>, json: bool, wide: bool) -> io::Result<()> {
    let d = &r.decision;
    let wide = wide.then(|| Wide::of(r.packet, r.meta.truncated));
    if json {
        let line = JsonLine {
            frame: r.frame,
            verdict: d.verdict().as_str(),
            reason: d.reason.as_str(),
            proto: d.proto,
            dport: d.dport,
            wide,
        };
        serde_json::to_writer(&mut *out, &line)?;
        return writeln!(out);
    }
    write!(
        out,
        "{}\t{}\t{}\t{}\t{}",
        r.frame,
        d.verdict(),
        d.reason,
        column(d.proto),
        column(d.dport)
    )?;
    if let Some(w) = wide {
        write!(
            out,
            "\t{}\t{}\t{}",
            column(w.src),
            column(w.dst),
            column(w.sport)
        )?;
    }
    writeln!(out)
}

/// The summary of a replay, as printed.
#[derive(Debug, Serialize)]
pub struct Summary {
    /// Frames decided.
    pub packets: u64,
    /// Frames accepted.
    pub accepted: u64,
    /// Frames dropped.
    pub dropped: u64,
    /// Count per reason, every reason (see [`crate::output::reason_counts`]).
    pub reasons: serde_json::Map<String, serde_json::Value>,
    /// New flows not recorded: every slot they could take held a confirmed
    /// flow (their packets were still accepted).
    pub flows_not_recorded: u64,
}

impl Summary {
    /// The summary of some counts.
    pub fn new(t: &Totals) -> Self {
        Summary {
            packets: t.packets(),
            accepted: t.accepted(),
            dropped: t.dropped(),
            reasons: crate::output::reason_counts(t.iter().map(|(r, n)| (r.as_str(), n))),
            flows_not_recorded: t.flows_not_recorded(),
        }
    }
}

pub(crate) fn write_summary(out: &mut impl Write, t: &Totals, json: bool) -> io::Result<()> {
    if json {
        serde_json::to_writer_pretty(&mut *out, &Summary::new(t))?;
        return writeln!(out);
    }
    write_verdict_counts(out, t)?;
    write_reason_table(out, t)
}

/// The `packets`, `accepted`, `dropped` lines of a text summary.
pub(crate) fn write_verdict_counts(out: &mut impl Write, t: &Totals) -> io::Result<()> {
    writeln!(out, "packets   {}", t.packets())?;
    writeln!(out, "accepted  {}", t.accepted())?;
    writeln!(out, "dropped   {}", t.dropped())
}

/// A blank line and the count of every reason, one line each, in SPEC order;
/// then a blank line and the flows that could not be recorded.
pub(crate) fn write_reason_table(out: &mut impl Write, t: &Totals) -> io::Result<()> {
    writeln!(out)?;
    writeln!(out, "{:<22}{:<8}{:>8}", "reason", "verdict", "count")?;
    for (reason, n) in t.iter() {
        writeln!(
            out,
            "{:<22}{:<8}{:>8}",
            reason.as_str(),
            reason.verdict().as_str(),
            n
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "{:<30}{:>8}",
        "flows_not_recorded",
        t.flows_not_recorded()
    )
}

fn progress_bar(file: &CaptureFile) -> Option<indicatif::ProgressBar> {
    const LARGE: u64 = 16 << 20;
    if !io::stderr().is_terminal() || file.size() < LARGE {
        return None;
    }
    let bar = indicatif::ProgressBar::new(file.size());
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style);
    }
    Some(bar)
}

/// Starts the log writer when `--log` is given.
fn start_log(args: &Args) -> anyhow::Result<Option<(LogFilter, LogSender, LogWriter)>> {
    let Some(path) = &args.log else {
        return Ok(None);
    };
    anyhow::ensure!(
        args.log_max_size >= LogSettings::MIN_MAX_SIZE,
        "--log-max-size {} is too small: the cap is at least {} bytes",
        args.log_max_size,
        LogSettings::MIN_MAX_SIZE
    );
    let config = LogConfig {
        path: path.clone(),
        max_size: args.log_max_size,
        utc_offset_s: local_utc_offset(),
    };
    // Replay can wait for its writer: a queue as large as needed loses nothing.
    let (sender, writer) = LogWriter::spawn(config, 1 << 16)?;
    let filter = LogFilter {
        dropped: true,
        connections: args.log_connections,
    };
    Ok(Some((filter, sender, writer)))
}

/// Sends one decided frame to the log if the filter wants it.
fn log_frame(r: &Replayed<'_>, filter: &LogFilter, sender: &LogSender) {
    let d = &r.decision;
    let m = &r.meta;
    if let Some(rec) = filter.record(r.packet, m.truncated, d, m.direction, m.now_ns) {
        sender.send_blocking(rec);
    }
}

/// `--explain N`: replays up to frame N (so the flow state and fragment
/// memory are the replay's) and explains it.
fn explain_frame(
    file: &mut CaptureFile,
    engine: &Engine,
    opts: &ReplayOptions,
    ctx: &explain::Context,
    n: u64,
    json: bool,
) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        n >= 1,
        "--explain 0 is not a frame: frames count from 1, as tshark counts"
    );
    let mut found = None;
    // flows_not_recorded before frame N: whether N's flow found a slot.
    let not_recorded = || engine.counters().totals().flows_not_recorded();
    let mut before = 0;
    let totals = replay(file, engine, opts, |r| {
        if r.frame < n {
            if r.frame + 1 == n {
                before = not_recorded();
            }
            return ControlFlow::Continue(());
        }
        found = Some(explain::explain(r, ctx, not_recorded() > before));
        ControlFlow::Break(())
    });
    let e = match (found, totals) {
        (Some(e), _) => e,
        (None, Ok(t)) => anyhow::bail!(
            "--explain {n}: the capture has only {} frames: give a frame number from 1 to {}",
            t.packets(),
            t.packets()
        ),
        (None, Err(stopped)) => {
            let frames = stopped.totals.packets();
            return Err(anyhow::Error::new(stopped.error).context(format!(
                "--explain {n}: the capture could not be read past frame {frames}"
            )));
        }
    };
    let mut out = io::stdout().lock();
    match explain::write(&mut out, &e, json).and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e).context("cannot write the output"),
        Ok(()) => Ok(ExitCode::SUCCESS),
    }
}

/// Runs `v6fw replay`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (policy, id) = build_policy(&args)?;
    let if_index = policy.connection(&id)?.if_index;
    let per_packet = args.per_packet || args.wide;
    let explain_ctx = explain::Context::new(&policy, &args.local);
    let mut file = CaptureFile::open(&args.capture)?;
    // A fixed hash key: the same capture gives the same lines on every run,
    // even where a full table makes placement matter.
    let state = StateConfig {
        hash_key: HashKey::Fixed(REPLAY_HASH_KEY),
        ..StateConfig::from(&policy.state)
    };
    let engine = Engine::with_state(policy, state);
    let opts = ReplayOptions {
        local: args.local.clone(),
        if_index,
    };
    if let Some(n) = args.explain {
        return explain_frame(&mut file, &engine, &opts, &explain_ctx, n, args.json);
    }
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let bar = progress_bar(&file);
    let log = start_log(&args)?;
    let mut write_error: Option<io::Error> = None;
    let mut n = 0u64;
    let totals = replay(&mut file, &engine, &opts, |r| {
        n += 1;
        if let Some(bar) = bar.as_ref().filter(|_| n.is_multiple_of(4096)) {
            bar.set_position(r.position);
        }
        if let Some((filter, sender, _)) = &log {
            log_frame(r, filter, sender);
        }
        if per_packet {
            if let Err(e) = write_line(&mut out, r, args.json, args.wide) {
                write_error = Some(e);
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if let Some((_, sender, writer)) = log {
        let lost = sender.lost();
        drop(sender);
        writer.finish().context("cannot write the firewall log")?;
        if lost > 0 {
            eprintln!("v6fw: {lost} log lines were lost: the log writer could not keep up");
        }
    }
    // A capture that breaks off is reported as tcpdump and tshark do: what
    // was read, then the error (and a failing exit code).
    let (totals, read_error) = match totals {
        Ok(totals) => (totals, None),
        Err(stopped) => {
            let Interrupted { totals, error } = *stopped;
            (totals, Some(error))
        }
    };
    let result = match write_error {
        Some(e) => Err(e),
        None if per_packet => out.flush(),
        None => write_summary(&mut out, &totals, args.json).and_then(|()| out.flush()),
    };
    match result {
        // A reader that went away (`| head`) is not an error.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e).context("cannot write the output"),
        Ok(()) => match read_error {
            Some(error) => Err(anyhow::Error::new(error).context(format!(
                "the capture could not be read to its end: the counts above are of the {} frames before the error",
                totals.packets()
            ))),
            None => Ok(ExitCode::SUCCESS),
        },
    }
}
