//! `v6fw stats`: the running daemon's verdict counters per reason, the
//! firewall log's counters (lines lost included), the kernel's queue drops
//! (read from `/proc/net/netfilter/nfnetlink_queue` of the caller's network
//! namespace, which is the daemon's when run beside it), what the kernel
//! accepted for it with `--offload` (the offload rules' counters, read with
//! ip6tables in the same namespace) and the open pairs; with
//! `--watch`, a live view redrawn every second (packets/s per reason), or
//! one JSON object per line per second with `--json`.

use std::fmt::Write as _;
use std::io::{self, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::cmd::ports::Where;
use crate::cmd::run::offload::to_json;
use crate::output::reason_counts;
use v6fw_api::control::client::Client;
use v6fw_api::control::protocol::{Request, StatsResult};
use v6fw_api::fw::FwError;
use v6fw_capture::offload::Offloaded;

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
    /// What the kernel accepted for v6fw (`--offload`); none while off.
    offload: Option<Offloaded>,
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

/// The offload rules' counters in this network namespace (`--offload`).
fn offloaded() -> Option<Offloaded> {
    #[cfg(target_os = "linux")]
    return v6fw_capture::offload::read().ok().flatten();
    #[cfg(not(target_os = "linux"))]
    None
}

fn sample(stats: StatsResult) -> Sample {
    Sample {
        stats,
        kernel: kernel_queues(),
        offload: offloaded(),
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
    let mut client = connect(&args.place.daemon_socket()?)?;
    let mut out = io::stdout().lock();
    if !args.watch {
        let now = sample(client.request(&Request::Stats)?);
        let text = if args.json {
            json_line(&now, None)?
        } else {
            render(&now, None, Style::default())
        };
        return finish(out.write_all(text.as_bytes()).and_then(|()| out.flush()));
    }
    let clear = !args.json && io::stdout().is_terminal();
    // On a terminal: bars per reason, coloured unless NO_COLOR says not.
    let style = Style {
        bars: clear,
        colour: crate::output::colour(clear),
    };
    let mut before: Option<Sample> = None;
    let mut next = Instant::now();
    let mut shown = 0u64;
    loop {
        let stats: StatsResult = match client.request(&Request::Stats) {
            Ok(s) => s,
            // The daemon restarted, or dropped an idle connection: once more.
            Err(_) => {
                client = connect(&args.place.daemon_socket()?)?;
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
            text.push_str(&render(&now, before.as_ref(), style));
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

/// The stats as one JSON line: the reasons as `replay --json` and `run
/// --json` print them, with `packets_per_s` (null on the first).
fn json_line(now: &Sample, before: Option<&Sample>) -> anyhow::Result<String> {
    let mut v = serde_json::to_value(&now.stats)?;
    if let Some(obj) = v.as_object_mut() {
        let reasons = now
            .stats
            .reasons
            .iter()
            .map(|r| (r.reason.as_str(), r.count));
        obj.insert("reasons".into(), reason_counts(reasons).into());
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
        obj.insert(
            "offload".into(),
            now.offload
                .as_ref()
                .map_or(serde_json::Value::Null, to_json),
        );
    }
    let mut line = serde_json::to_string(&v)?;
    line.push('\n');
    Ok(line)
}

fn rate(r: Option<f64>) -> String {
    r.map_or_else(|| "-".to_string(), |r| format!("{r:.1}"))
}

/// How the text view is drawn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Style {
    /// A bar per reason: its rate against the largest rate, or, when
    /// nothing moved since the last refresh (and on the first), its count
    /// against the largest count.
    bars: bool,
    /// Bars in colour: green for accept reasons, red for drop reasons.
    colour: bool,
}

/// The longest bar, in characters.
const BAR_WIDTH: u64 = 30;

/// A bar of `value` against `max`: at least one block for any non-zero value.
fn bar(value: f64, max: f64, drop: bool, colour: bool) -> String {
    if value <= 0.0 || max <= 0.0 {
        return String::new();
    }
    let len = ((value / max) * BAR_WIDTH as f64)
        .ceil()
        .clamp(1.0, BAR_WIDTH as f64) as usize;
    let blocks = "\u{2588}".repeat(len);
    match (colour, drop) {
        (false, _) => blocks,
        (true, true) => format!("\x1b[31m{blocks}\x1b[0m"),
        (true, false) => format!("\x1b[32m{blocks}\x1b[0m"),
    }
}

/// The text view: totals, reasons (with bars when `style` says), log, open pairs.
fn render(now: &Sample, before: Option<&Sample>, style: Style) -> String {
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
    let rates: Vec<Option<f64>> = (0..s.reasons.len())
        .map(|i| per_second(now, before, |x| x.reasons.get(i).map_or(0, |c| c.count)))
        .collect();
    // What the bars show: the rates when anything moved since the last
    // refresh, else the counts.
    let moving = rates.iter().any(|r| r.is_some_and(|r| r > 0.0));
    let shown: Vec<f64> = s
        .reasons
        .iter()
        .zip(&rates)
        .map(|(r, rate)| match rate {
            Some(rate) if moving => *rate,
            _ => r.count as f64,
        })
        .collect();
    let max = shown.iter().copied().fold(0.0, f64::max);
    for ((r, r_rate), v) in s.reasons.iter().zip(&rates).zip(&shown) {
        let _ = write!(
            t,
            "  {:<7} {:<22} {:>12} {:>10}",
            r.verdict,
            r.reason,
            r.count,
            rate(*r_rate)
        );
        if style.bars {
            let b = bar(*v, max, r.verdict == "drop", style.colour);
            if !b.is_empty() {
                let _ = write!(t, "  {b}");
            }
        }
        let _ = writeln!(t);
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
    let _ = match &now.offload {
        Some(o) => writeln!(
            t,
            "offload: {} packets ({} bytes) accepted by the kernel for v6fw (established flows)",
            o.packets(),
            o.bytes()
        ),
        None => writeln!(
            t,
            "offload: no offload rule here (off, or ip6tables needs root)"
        ),
    };
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

#[cfg(test)]
mod tests {
    use super::*;
    use v6fw_api::control::protocol::ReasonCount;

    fn sample(counts: &[(&str, &str, u64)], at: Instant) -> Sample {
        let reasons: Vec<ReasonCount> = counts
            .iter()
            .map(|(reason, verdict, count)| ReasonCount {
                reason: (*reason).to_string(),
                verdict: (*verdict).to_string(),
                count: *count,
            })
            .collect();
        let packets = reasons.iter().map(|r| r.count).sum();
        Sample {
            stats: StatsResult {
                packets,
                accepted: 0,
                dropped: 0,
                reasons,
                flows_not_recorded: 0,
                log: Default::default(),
                global_ports: Vec::new(),
                connections: Vec::new(),
            },
            kernel: Vec::new(),
            offload: None,
            at,
        }
    }

    fn line<'a>(text: &'a str, reason: &str) -> &'a str {
        text.lines()
            .find(|l| l.contains(reason))
            .unwrap_or_else(|| panic!("no {reason} line in\n{text}"))
    }

    #[test]
    fn watch_bars_follow_the_rates_per_reason() {
        let t0 = Instant::now();
        let a = sample(
            &[("open_port", "accept", 10), ("port_closed", "drop", 0)],
            t0,
        );
        let b = sample(
            &[("open_port", "accept", 12), ("port_closed", "drop", 40)],
            t0 + Duration::from_secs(2),
        );
        let bars = Style {
            bars: true,
            colour: false,
        };
        let text = render(&b, Some(&a), bars);
        // port_closed: 20/s, the largest rate: the whole bar; open_port 1/s.
        let closed = line(&text, "port_closed");
        assert!(closed.contains("20.0"), "{closed}");
        assert_eq!(
            closed.matches('\u{2588}').count(),
            BAR_WIDTH as usize,
            "{closed}"
        );
        let open = line(&text, "open_port");
        assert!(open.contains("1.0"), "{open}");
        assert_eq!(open.matches('\u{2588}').count(), 2, "{open}");
        // The first frame has no rate: the bars show the counts.
        let first = render(&a, None, bars);
        assert_eq!(line(&first, "open_port").matches('\u{2588}').count(), 30);
        assert_eq!(line(&first, "port_closed").matches('\u{2588}').count(), 0);
        // No bars, no colour off a terminal.
        let plain = render(&b, Some(&a), Style::default());
        assert!(
            !plain.contains('\u{2588}') && !plain.contains('\x1b'),
            "{plain}"
        );
        assert!(!text.contains('\x1b'), "no colour unless asked: {text}");
        // Nothing moved: the bars show the counts again.
        let c = sample(
            &[("open_port", "accept", 12), ("port_closed", "drop", 40)],
            t0 + Duration::from_secs(3),
        );
        let idle = render(&c, Some(&b), bars);
        assert_eq!(line(&idle, "port_closed").matches('\u{2588}').count(), 30);
        assert_eq!(line(&idle, "open_port").matches('\u{2588}').count(), 9);
    }

    #[test]
    fn watch_bars_are_coloured_by_verdict_when_allowed() {
        let t0 = Instant::now();
        let a = sample(
            &[("open_port", "accept", 5), ("port_closed", "drop", 5)],
            t0,
        );
        let text = render(
            &a,
            None,
            Style {
                bars: true,
                colour: true,
            },
        );
        assert!(line(&text, "open_port").contains("\x1b[32m"), "{text}");
        assert!(line(&text, "port_closed").contains("\x1b[31m"), "{text}");
    }
}
