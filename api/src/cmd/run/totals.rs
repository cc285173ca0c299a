//! What `v6fw run` prints: the periodic stats line, the totals at exit
//! (text or JSON) and its last error lines, none of which may kill the
//! daemon when its output is gone.

use std::io::{self, Write};

use v6fw_engine::Totals;

use super::kernel::KernelDrops;
use super::offload::OffloadCounter;
use super::Outcome;
use crate::cmd::replay::{write_reason_table, write_verdict_counts, Summary};
use v6fw_api::log::LogStats;

/// Writes one line to stderr; a closed or broken stderr is not an error
/// (the daemon must not die of it).
pub(super) fn report(line: &str) {
    let _ = writeln!(io::stderr(), "v6fw: {line}");
}

pub(super) fn log_stats(t: &Totals, log: &LogStats, kernel: &KernelDrops, off: &OffloadCounter) {
    let reasons: Vec<String> = t
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(r, n)| format!("{}={n}", r.as_str()))
        .collect();
    let k = kernel.sum();
    let offloaded = if off.enabled() {
        format!(" kernel_accepted={}", off.last().packets())
    } else {
        String::new()
    };
    tracing::info!(
        "stats: packets={} accepted={} dropped={} {} flows_not_recorded={} log_written={} \
         log_lost={} kernel_queue_dropped={} kernel_user_dropped={}{offloaded}",
        t.packets(),
        t.accepted(),
        t.dropped(),
        reasons.join(" "),
        t.flows_not_recorded(),
        log.written,
        log.lost,
        k.queue_dropped,
        k.user_dropped
    );
}

/// Prints the totals per reason (as `v6fw replay` prints its summary), what
/// the firewall log wrote and lost, and what the kernel dropped.
pub(super) fn print_totals(
    out: &mut impl Write,
    o: &Outcome,
    log: &LogStats,
    json: bool,
) -> io::Result<()> {
    let t = &o.totals;
    let k = o.kernel.sum();
    if json {
        let mut v = serde_json::to_value(Summary::new(t))?;
        if let Some(obj) = v.as_object_mut() {
            obj.insert(
                "log".into(),
                serde_json::json!({
                    "written": log.written,
                    "lost": log.lost,
                    "failed": log.failed,
                    "rotations": log.rotations,
                }),
            );
            let queues: serde_json::Map<String, serde_json::Value> = o
                .kernel
                .per_queue()
                .iter()
                .map(|(q, d)| (q.to_string(), serde_json::json!(d)))
                .collect();
            obj.insert(
                "kernel".into(),
                serde_json::json!({
                    "queue_dropped": k.queue_dropped,
                    "user_dropped": k.user_dropped,
                    "queues": queues,
                }),
            );
            obj.insert("offload".into(), o.offload.json());
        }
        serde_json::to_writer_pretty(&mut *out, &v)?;
        writeln!(out)?;
        return out.flush();
    }
    writeln!(out, "ran       {:.1} s", o.elapsed.as_secs_f64())?;
    write_verdict_counts(out, t)?;
    writeln!(
        out,
        "log       {} lines written, {} lost (queue full), {} not written",
        log.written, log.lost, log.failed
    )?;
    writeln!(
        out,
        "kernel    {} dropped before v6fw saw them ({} queue full, {} socket full)",
        k.total(),
        k.queue_dropped,
        k.user_dropped
    )?;
    if o.offload.enabled() {
        let off = o.offload.last();
        writeln!(
            out,
            "offload   {} packets ({} bytes) accepted by the kernel for v6fw (established flows)",
            off.packets(),
            off.bytes()
        )?;
    }
    write_reason_table(out, t)?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A writer whose reader went away.
    struct Broken;

    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
    }

    #[test]
    fn the_totals_show_kernel_drops_and_survive_a_closed_stdout() {
        let mut kernel = KernelDrops::new(0, 1);
        kernel.update([(0, 76_251, 3), (1, 4, 0)]);
        let o = Outcome {
            totals: v6fw_engine::Engine::new(v6fw_engine::Policy::default())
                .counters()
                .totals(),
            elapsed: Duration::from_secs(1),
            errors: Vec::new(),
            fault: false,
            kernel,
            offload: OffloadCounter::new(false),
        };
        let log = LogStats::default();
        let mut json = Vec::new();
        print_totals(&mut json, &o, &log, true).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["kernel"]["queue_dropped"], 76_255);
        assert_eq!(v["kernel"]["user_dropped"], 3);
        assert_eq!(v["kernel"]["queues"]["0"]["queue_dropped"], 76_251);
        assert!(v["offload"].is_null(), "offload off: null");
        let mut text = Vec::new();
        print_totals(&mut text, &o, &log, false).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("kernel    76258 dropped"), "{text}");
        // `| tee` gone, or stdout closed: an error to log, not a panic.
        let mut on = OffloadCounter::new(true);
        on.record(v6fw_capture::offload::Offloaded {
            in_packets: 700,
            in_bytes: 7000,
            out_packets: 300,
            out_bytes: 3000,
        });
        let o = Outcome { offload: on, ..o };
        let mut json = Vec::new();
        print_totals(&mut json, &o, &log, true).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["offload"]["kernel_accepted_packets"], 1000);
        assert_eq!(v["offload"]["kernel_accepted_bytes"], 10_000);
        let mut text = Vec::new();
        print_totals(&mut text, &o, &log, false).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(
            text.contains("offload   1000 packets (10000 bytes) accepted"),
            "{text}"
        );
        for json in [true, false] {
            assert!(print_totals(&mut Broken, &o, &log, json).is_err());
        }
        assert!(std::panic::catch_unwind(|| report("stderr may be closed")).is_ok());
    }
}
