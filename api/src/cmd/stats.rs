//! `v6fw stats`: the running daemon's verdict counters per reason, the
//! firewall log's counters (lines lost included), the kernel's queue drops
//! (read from `/proc/net/netfilter/nfnetlink_queue` of the caller's network
//! namespace, which is the daemon's when run beside it) and the open pairs; with
//! `--watch`, a live view redrawn every second (packets/s per reason), or
//! one JSON object per line per second with `--json`.

use std::fmt::Write as _;
use std::io::{self, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::cmd::ports::Where;
use crate::control::client::Client;
use crate::control::protocol::{Request, StatsResult};
use crate::fw::FwError;

/// How often `--watch` refreshes.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// Arguments of `v6fw stats`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON instead of text (with --watch: one object per line per refresh).
    #[arg(long)]
    pub json: bool,
    /// Keep refreshing every second: a live view (Ctrl-C to leave).
    #[arg(long)]
    pub watch: bool,
    /// With --watch: stop after N refreshes.
    #[arg(long, value_name = "N", requires = "watch")]
    pub count: Option<u64>,
    /// Daemon socket (the state directory is not used).
    #[command(flatten)]
    pub place: Where,
}

fn connect(socket: &Path) -> Result<Client, FwError> {
    Client::connect(socket)?.ok_or_else(|| {
        FwError::Fail(format!(
            "no v6fw daemon is running on {}: start it with `v6fw run`, or pass --socket",
            socket.display()
        ))
    })
}

/// One refresh: the stats and, from the second on, the rates since the last.
struct Sample {
    stats: StatsResult,
    kernel: Vec<QueueDrops>,
    at: Instant,
}

/// One bound queue's kernel counters (since the queue was bound).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
struct QueueDrops {
    queue: u16,
    queue_total: u64,
    queue_dropped: u64,
    user_dropped: u64,
}

/// The kernel's queues in this network namespace (Linux; elsewhere none).
fn kernel_queues() -> Vec<QueueDrops> {
    #[cfg(target_os = "linux")]
    if let Ok(rows) = v6fw_capture::nfqueue::drops::read() {
        return rows
            .iter()
            .map(|r| QueueDrops {
                queue: r.queue,
                queue_total: r.queue_total,
                queue_dropped: r.queue_dropped,
                user_dropped: r.user_dropped,
            })
            .collect();
    }
    Vec::new()
}

fn sample(stats: StatsResult) -> Sample {
    Sample {
        stats,
        kernel: kernel_queues(),
        at: Instant::now(),
    }
}

/// Queue-full and socket-full drops summed over the queues.
fn kernel_sum(q: &[QueueDrops]) -> (u64, u64) {
    q.iter().fold((0, 0), |(a, b), q| {
        (a + q.queue_dropped, b + q.user_dropped)
    })
}

fn per_second(
    now: &Sample,
    before: Option<&Sample>,
    pick: impl Fn(&StatsResult) -> u64,
) -> Option<f64> {
    let b = before?;
    let secs = now.at.duration_since(b.at).as_secs_f64();
    (secs > 0.0).then(|| pick(&now.stats).saturating_sub(pick(&b.stats)) as f64 / secs)
}

/// Runs `v6fw stats`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut client = connect(&args.place.socket)?;
    let mut out = io::stdout().lock();
    if !args.watch {
        let now = sample(client.request(&Request::Stats)?);
        let text = if args.json {
            json_line(&now, None)?
        } else {
            render(&now, None)
        };
        return finish(out.write_all(text.as_bytes()).and_then(|()| out.flush()));
    }
    let clear = !args.json && io::stdout().is_terminal();
    let mut before: Option<Sample> = None;
    let mut next = Instant::now();
    let mut shown = 0u64;
    loop {
        let stats: StatsResult = match client.request(&Request::Stats) {
            Ok(s) => s,
            // The daemon restarted, or dropped an idle connection: once more.
            Err(_) => {
                client = connect(&args.place.socket)?;
                client.request(&Request::Stats)?
            }
        };
        let now = sample(stats);
        let mut text = String::new();
        if args.json {
            text.push_str(&json_line(&now, before.as_ref())?);
        } else {
            if clear {
                // Home and clear the screen, then draw.
                text.push_str("\x1b[H\x1b[2J");
            }
            text.push_str(&render(&now, before.as_ref()));
            if !clear {
                text.push('\n');
            }
        }
        if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            return finish(Err(e));
        }
        shown += 1;
        if args.count.is_some_and(|n| shown >= n) {
            return Ok(ExitCode::SUCCESS);
        }
        before = Some(now);
        next += WATCH_INTERVAL;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
}

/// A reader that went away (`| head`) is not an error.
fn finish(r: io::Result<()>) -> anyhow::Result<ExitCode> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(anyhow::Error::new(e).context("cannot write the stats")),
        Ok(()) => Ok(ExitCode::SUCCESS),
    }
}

/// The stats as one JSON line, with `packets_per_s` (null on the first).
fn json_line(now: &Sample, before: Option<&Sample>) -> anyhow::Result<String> {
    let mut v = serde_json::to_value(&now.stats)?;
    if let Some(obj) = v.as_object_mut() {
        obj.insert(
            "packets_per_s".into(),
            serde_json::json!(per_second(now, before, |s| s.packets)),
        );
        let (qd, ud) = kernel_sum(&now.kernel);
        obj.insert(
            "kernel_dropped".into(),
            serde_json::json!({"queue_dropped": qd, "user_dropped": ud}),
        );
        obj.insert("kernel_queues".into(), serde_json::json!(now.kernel));
    }
    let mut line = serde_json::to_string(&v)?;
    line.push('\n');
    Ok(line)
}

fn rate(r: Option<f64>) -> String {
    r.map_or_else(|| "-".to_string(), |r| format!("{r:.1}"))
}

/// The text view: totals, reasons, log, open pairs.
fn render(now: &Sample, before: Option<&Sample>) -> String {
    let s = &now.stats;
    let mut t = String::new();
    let pps = per_second(now, before, |s| s.packets);
    let _ = writeln!(
        t,
        "packets {}  accepted {}  dropped {}{}",
        s.packets,
        s.accepted,
        s.dropped,
        pps.map_or_else(String::new, |r| format!("  ({r:.1} packets/s)"))
    );
    let _ = writeln!(t);
    let _ = writeln!(
        t,
        "  {:<7} {:<22} {:>12} {:>10}",
        "verdict", "reason", "count", "/s"
    );
    for (i, r) in s.reasons.iter().enumerate() {
        let r_rate = per_second(now, before, |x| x.reasons.get(i).map_or(0, |c| c.count));
        let _ = writeln!(
            t,
            "  {:<7} {:<22} {:>12} {:>10}",
            r.verdict,
            r.reason,
            r.count,
            rate(r_rate)
        );
    }
    let _ = writeln!(
        t,
        "  flows not recorded (table full of confirmed flows): {}",
        s.flows_not_recorded
    );
    let l = &s.log;
    let _ = writeln!(t);
    let _ = writeln!(
        t,
        "log: dropped {}, connections {}, file {}",
        if l.dropped { "on" } else { "off" },
        if l.connections { "on" } else { "off" },
        l.file.as_deref().unwrap_or("-")
    );
    let _ = writeln!(
        t,
        "     {} lines written, {} lost (queue full), {} not written, {} rotations",
        l.written, l.lost, l.failed, l.rotations
    );
    let (qd, ud) = kernel_sum(&now.kernel);
    let queues: Vec<String> = now.kernel.iter().map(|q| q.queue.to_string()).collect();
    let _ = writeln!(
        t,
        "kernel: {} dropped before v6fw saw them ({qd} queue full, {ud} socket full); queues {}",
        qd + ud,
        list(&queues)
    );
    let _ = writeln!(t);
    let global: Vec<String> = s
        .global_ports
        .iter()
        .map(|p| format!("{}/{}", p.port, p.protocol))
        .collect();
    let _ = writeln!(t, "open ports:");
    let _ = writeln!(t, "  global: {}", list(&global));
    for c in &s.connections {
        let _ = writeln!(
            t,
            "  {} (index {}, firewall {}): own {}; ignores {}",
            c.id,
            c.if_index,
            if c.firewalled { "on" } else { "off" },
            list(&c.open),
            list(&c.ignored)
        );
    }
    t
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "-".to_string()
    } else {
        items.join(", ")
    }
}
