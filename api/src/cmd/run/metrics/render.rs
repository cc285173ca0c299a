//! A [`Reading`] in the OpenMetrics text format, through
//! `prometheus-client`'s encoder (names, `_total` suffixes, label quoting,
//! `# EOF`).

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::{Reading, WorkerReading};

/// The reading to encode, as a collector of one scrape.
#[derive(Debug)]
struct Scrape(Reading);

/// A family of counters: `(labels, value)` rows under one name.
fn counters<const N: usize>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = ([(&'static str, String); N], u64)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in rows {
        ConstCounter::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// One counter without labels.
fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

impl Collector for Scrape {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let r = &self.0;
        let mut info = e.encode_descriptor(
            "v6fw_build",
            "The running v6fw: its version",
            None,
            MetricType::Info,
        )?;
        info.encode_info(&[("version", env!("CARGO_PKG_VERSION"))])?;
        counters(
            &mut e,
            "v6fw_packets",
            "Packets decided, by worker, queue, verdict and reason (SPEC.md's names)",
            r.workers.iter().flat_map(|w| {
                w.totals.iter().map(|(reason, n)| {
                    (
                        [
                            ("worker", w.worker.clone()),
                            ("queue", w.queue.clone()),
                            ("verdict", reason.verdict().as_str().to_string()),
                            ("reason", reason.as_str().to_string()),
                        ],
                        n,
                    )
                })
            }),
        )?;
        for (name, help, value) in [
            (
                "v6fw_flows_not_recorded",
                "New flows the flow table could not record (every slot held a confirmed flow), by worker",
                (|w| w.totals.flows_not_recorded()) as fn(&WorkerReading) -> u64,
            ),
            (
                "v6fw_worker_restarts",
                "Times a worker was started again after it failed or panicked",
                |w| w.restarts,
            ),
        ] {
            let rows = r.workers.iter().map(|w| {
                (
                    [("worker", w.worker.clone()), ("queue", w.queue.clone())],
                    value(w),
                )
            });
            counters(&mut e, name, help, rows)?;
        }
        for (name, help, value) in [
            (
                "v6fw_flows_held",
                "Live flows in the worker's flow table, as the worker last published it (about once a second)",
                (|w| w.totals.flows_held()) as fn(&WorkerReading) -> u64,
            ),
            (
                "v6fw_fragment_entries",
                "Live first-fragment memories in the worker's fragment table, published as v6fw_flows_held",
                |w| w.totals.fragments_held(),
            ),
        ] {
            let mut family = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for w in &r.workers {
                let labels = [("worker", w.worker.clone()), ("queue", w.queue.clone())];
                let n = i64::try_from(value(w)).unwrap_or(i64::MAX);
                ConstGauge::new(n).encode(family.encode_family(&labels)?)?;
            }
        }
        counters(
            &mut e,
            "v6fw_kernel_dropped",
            "Packets the kernel dropped before v6fw saw them, by queue and cause \
             (queue_full: --queue-len; socket_full: the netlink socket's buffer)",
            r.kernel.iter().flat_map(|(q, d)| {
                [
                    ("queue_full", d.queue_dropped),
                    ("socket_full", d.user_dropped),
                ]
                .map(|(cause, n)| ([("queue", q.to_string()), ("cause", cause.to_string())], n))
            }),
        )?;
        if let Some(o) = &r.offload {
            for (name, help, inbound, outbound) in [
                (
                    "v6fw_offload_accepted_packets",
                    "Packets the kernel accepted for --offload established without asking v6fw",
                    o.in_packets,
                    o.out_packets,
                ),
                (
                    "v6fw_offload_accepted_bytes",
                    "Bytes the kernel accepted for --offload established without asking v6fw",
                    o.in_bytes,
                    o.out_bytes,
                ),
            ] {
                let rows = [("in", inbound), ("out", outbound)]
                    .map(|(d, n)| ([("direction", d.to_string())], n));
                counters(&mut e, name, help, rows)?;
            }
        }
        counter(
            &mut e,
            "v6fw_policy_publishes",
            "Policy changes published to the workers since the start",
            r.publishes,
        )?;
        let mut pairs = e.encode_descriptor(
            "v6fw_open_pairs",
            "Open port/protocol pairs in the running policy, by scope",
            None,
            MetricType::Gauge,
        )?;
        for (scope, n) in [
            ("global", r.global_pairs),
            ("connection", r.connection_pairs),
        ] {
            let n = i64::try_from(n).unwrap_or(i64::MAX);
            ConstGauge::new(n).encode(pairs.encode_family(&[("scope", scope)])?)?;
        }
        counter(
            &mut e,
            "v6fw_log_lines_written",
            "Firewall log lines written",
            r.log.written,
        )?;
        counter(
            &mut e,
            "v6fw_log_lines_lost",
            "Firewall log records lost because the writer's queue was full",
            r.log.lost,
        )?;
        counter(
            &mut e,
            "v6fw_log_lines_failed",
            "Firewall log records not written (no log file open, or a write error)",
            r.log.failed,
        )?;
        counter(
            &mut e,
            "v6fw_log_rotations",
            "Firewall log rotations to FILE.old",
            r.log.rotations,
        )
    }
}

/// `reading` as an OpenMetrics text exposition (ends with `# EOF`).
pub fn render(reading: Reading) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Scrape(reading)));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::run::kernel::Dropped;
    use v6fw_engine::{Reason, Totals};

    /// The value of the sample line that starts with `series ` (labels in
    /// the order written).
    fn value(text: &str, series: &str) -> Option<String> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .map(str::to_string)
    }

    #[test]
    fn renders_every_family_in_openmetrics_text() {
        let mut totals = Totals::default();
        for _ in 0..3 {
            totals.add(Reason::PortClosed);
        }
        totals.add(Reason::OpenPort);
        let held = v6fw_engine::counters::WorkerCounters::default();
        held.set_held(4, 1);
        totals.add_all(&held.totals());
        let reading = Reading {
            workers: vec![WorkerReading {
                worker: "nfqueue-0".into(),
                queue: "0".into(),
                totals,
                restarts: 2,
            }],
            kernel: [(
                0,
                Dropped {
                    queue_dropped: 7,
                    user_dropped: 2,
                },
            )]
            .into(),
            log: v6fw_api::log::LogStats {
                written: 5,
                rotations: 1,
                lost: 4,
                failed: 0,
            },
            publishes: 9,
            global_pairs: 2,
            connection_pairs: 1,
            offload: Some(v6fw_capture::offload::Offloaded {
                in_packets: 11,
                in_bytes: 1100,
                out_packets: 12,
                out_bytes: 1200,
            }),
        };
        let text = render(reading).unwrap();
        let w = r#"worker="nfqueue-0",queue="0""#;
        for (series, want) in [
            (
                format!(r#"v6fw_packets_total{{{w},verdict="drop",reason="port_closed"}}"#),
                "3",
            ),
            (
                format!(r#"v6fw_packets_total{{{w},verdict="accept",reason="open_port"}}"#),
                "1",
            ),
            (
                format!(r#"v6fw_packets_total{{{w},verdict="drop",reason="malformed"}}"#),
                "0",
            ),
            (
                r#"v6fw_kernel_dropped_total{queue="0",cause="queue_full"}"#.into(),
                "7",
            ),
            (
                r#"v6fw_kernel_dropped_total{queue="0",cause="socket_full"}"#.into(),
                "2",
            ),
            (format!("v6fw_flows_not_recorded_total{{{w}}}"), "0"),
            (format!("v6fw_worker_restarts_total{{{w}}}"), "2"),
            (format!("v6fw_flows_held{{{w}}}"), "4"),
            (format!("v6fw_fragment_entries{{{w}}}"), "1"),
            ("v6fw_policy_publishes_total".into(), "9"),
            (
                r#"v6fw_offload_accepted_packets_total{direction="in"}"#.into(),
                "11",
            ),
            (
                r#"v6fw_offload_accepted_bytes_total{direction="out"}"#.into(),
                "1200",
            ),
            (r#"v6fw_open_pairs{scope="global"}"#.into(), "2"),
            (r#"v6fw_open_pairs{scope="connection"}"#.into(), "1"),
            ("v6fw_log_lines_written_total".into(), "5"),
            ("v6fw_log_lines_lost_total".into(), "4"),
            ("v6fw_log_rotations_total".into(), "1"),
            (
                format!(
                    r#"v6fw_build_info{{version="{}"}}"#,
                    env!("CARGO_PKG_VERSION")
                ),
                "1",
            ),
        ] {
            assert_eq!(
                value(&text, &series).as_deref(),
                Some(want),
                "{series} in:\n{text}"
            );
        }
        assert!(text.contains("# TYPE v6fw_packets counter"), "{text}");
        assert!(text.contains("# TYPE v6fw_open_pairs gauge"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
        let off = render(Reading::default()).unwrap();
        assert!(
            !off.contains("v6fw_offload"),
            "no offload series while it is off"
        );
        // Every reason of the worker has its series, so a rate is never
        // missing for a reason that has not happened yet.
        let rows = text
            .lines()
            .filter(|l| l.starts_with("v6fw_packets_total{"))
            .count();
        assert_eq!(rows, Reason::ALL.len());
    }
}
