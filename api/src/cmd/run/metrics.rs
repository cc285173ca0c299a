//! `v6fw run --metrics ADDR`: the daemon's counters at `http://ADDR/metrics`
//! in the OpenMetrics text format (which Prometheus scrapes), served by one
//! thread of its own.
//!
//! A scrape reads what the packet path already keeps (each worker's
//! relaxed counters, the firewall log's atomics, the policy's generation)
//! and what the supervising loop publishes (the kernel's queue drops); the
//! only lock it takes is the list of worker counter blocks, which a worker
//! takes once when it starts, never per packet.

mod render;
mod serve;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use parking_lot::Mutex;
use v6fw_capture::offload::Offloaded;
use v6fw_engine::{Totals, WorkerCounters};

use super::kernel::Dropped;
use v6fw_api::fw::FirewallManager;
use v6fw_api::log::LogStats;

pub use render::render;
pub(super) use serve::MetricsServer;

/// The address `--metrics` serves without a value: loopback only.
pub const DEFAULT_ADDR: &str = "[::1]:9640";

/// The port `--metrics` takes when the address has none.
pub const DEFAULT_PORT: u16 = 9640;

/// Parses `--metrics`: `[ADDR]:PORT`, `ADDR:PORT` for IPv4, or a bare
/// address (port 9640).
pub fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    let addr = if let Ok(a) = text.parse::<SocketAddr>() {
        a
    } else if let Ok(ip) = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text)
        .parse::<IpAddr>()
    {
        SocketAddr::new(ip, DEFAULT_PORT)
    } else {
        return Err(format!(
            "`{text}` is not an address to serve metrics on: give [ADDR]:PORT, \
             e.g. [::1]:9640 or 127.0.0.1:9640"
        ));
    };
    if addr.port() == 0 {
        return Err("port 0 is not valid: ports are 1-65535 (the default is 9640)".into());
    }
    Ok(addr)
}

/// Serves `--metrics` on `addr` (logging where), warning when others than
/// this host can reach it.
pub(super) fn start(
    addr: SocketAddr,
    sources: &Arc<Sources>,
    shutdown: &Arc<AtomicBool>,
) -> anyhow::Result<MetricsServer> {
    let server = MetricsServer::start(addr, Arc::clone(sources), shutdown)?;
    if !is_loopback(&addr) {
        // An IPv6 address is bound IPV6_V6ONLY (v6fw_api::http): `[::]`
        // is not reached over IPv4, where v6fw filters nothing.
        let family = if addr.is_ipv6() && addr.ip().is_unspecified() {
            " It is IPv6 only (IPV6_V6ONLY): IPv4 clients are not served."
        } else {
            ""
        };
        tracing::warn!(
            "v6fw run: metrics served on {addr}, which is not loopback: whoever can reach it \
             reads the counters (serve on [::1] and scrape through a proxy, or firewall the \
             port).{family}"
        );
    }
    tracing::info!("v6fw run: metrics at http://{}/metrics", server.addr());
    Ok(server)
}

/// Whether only this host can reach `addr`.
pub fn is_loopback(addr: &SocketAddr) -> bool {
    match addr.ip() {
        IpAddr::V4(ip) => ip.is_loopback(),
        IpAddr::V6(ip) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// The IPv6 loopback address and the default port.
#[cfg(test)]
fn default_addr() -> SocketAddr {
    SocketAddr::new(IpAddr::V6(std::net::Ipv6Addr::LOCALHOST), DEFAULT_PORT)
}

/// One worker's counters in a reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerReading {
    /// The worker's name (`nfqueue-0`, `windivert`).
    pub worker: String,
    /// Its queue number (empty where there are none: WinDivert).
    pub queue: String,
    /// Its counts since the daemon started (over its restarts).
    pub totals: Totals,
    /// How often it was started again after a failure.
    pub restarts: u64,
}

/// Everything one scrape shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reading {
    /// Per worker.
    pub workers: Vec<WorkerReading>,
    /// The kernel's drops per queue since the daemon started.
    pub kernel: BTreeMap<u16, Dropped>,
    /// The firewall log's counters.
    pub log: LogStats,
    /// Policy changes published since the start.
    pub publishes: u64,
    /// Global open pairs.
    pub global_pairs: usize,
    /// Open pairs of the connections, summed.
    pub connection_pairs: usize,
    /// What the kernel accepted for `--offload` (last read at the stats
    /// interval); `None` while offload is off.
    pub offload: Option<Offloaded>,
}

/// The counter blocks of every worker the daemon started, by worker name:
/// a restarted worker adds a block, and its counts are the sum.
#[derive(Default)]
pub struct WorkerBlocks {
    blocks: Mutex<BTreeMap<String, Blocks>>,
}

/// One worker's queue label and its blocks, the first start's first.
type Blocks = (String, Vec<Arc<WorkerCounters>>);

impl WorkerBlocks {
    /// Records a new worker's block (once, at its start: takes a lock).
    #[cfg_attr(not(any(target_os = "linux", windows)), allow(dead_code))] // no backend there
    pub fn add(&self, worker: &str, queue: Option<u16>, block: Arc<WorkerCounters>) {
        let mut all = self.blocks.lock();
        let entry = all
            .entry(worker.to_string())
            .or_insert_with(|| (queue.map(|q| q.to_string()).unwrap_or_default(), Vec::new()));
        entry.1.push(block);
    }

    /// Each worker's counts now.
    pub fn read(&self) -> Vec<WorkerReading> {
        self.blocks
            .lock()
            .iter()
            .map(|(worker, (queue, blocks))| {
                let mut totals = Totals::default();
                for b in blocks {
                    totals.add_all(&b.totals());
                }
                WorkerReading {
                    worker: worker.clone(),
                    queue: queue.clone(),
                    totals,
                    // Each start leaves a block: the first, then one per restart.
                    restarts: blocks.len().saturating_sub(1) as u64,
                }
            })
            .collect()
    }
}

/// What a scrape reads from: shared by the daemon and the metrics thread.
pub struct Sources {
    manager: Arc<FirewallManager>,
    /// The workers' counter blocks.
    pub workers: Arc<WorkerBlocks>,
    kernel: Mutex<BTreeMap<u16, Dropped>>,
    offload: Mutex<Option<Offloaded>>,
}

impl Sources {
    /// Sources over `manager`'s engine, policy and log counters.
    pub fn new(manager: &Arc<FirewallManager>) -> Arc<Sources> {
        Arc::new(Sources {
            manager: Arc::clone(manager),
            workers: Arc::default(),
            kernel: Mutex::default(),
            offload: Mutex::default(),
        })
    }

    /// Publishes the kernel's drops (by the supervising loop, once a second).
    pub fn publish_kernel(&self, per_queue: &BTreeMap<u16, Dropped>) {
        self.kernel.lock().clone_from(per_queue);
    }

    /// Publishes the offload rules' counters (by the supervising loop, when
    /// it reads them).
    pub fn publish_offload(&self, offload: Option<Offloaded>) {
        *self.offload.lock() = offload;
    }

    /// Reads everything now.
    pub fn read(&self) -> Reading {
        let snapshot = self.manager.engine().table().pin();
        let policy = snapshot.policy();
        Reading {
            workers: self.workers.read(),
            kernel: self.kernel.lock().clone(),
            log: self.manager.log_counters().stats(),
            publishes: snapshot.generation(),
            global_pairs: policy.globals.len(),
            connection_pairs: policy.connections.values().map(|c| c.open.len()).sum(),
            offload: *self.offload.lock(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_with_clear_errors() {
        assert_eq!(parse_addr("[::1]:9640").unwrap(), default_addr());
        assert_eq!(parse_addr(DEFAULT_ADDR).unwrap(), default_addr());
        assert_eq!(parse_addr("::1").unwrap(), default_addr());
        assert_eq!(parse_addr("[::1]").unwrap(), default_addr());
        assert_eq!(
            parse_addr("127.0.0.1:9100").unwrap(),
            "127.0.0.1:9100".parse().unwrap()
        );
        let e = parse_addr("[::1]:0").unwrap_err();
        assert!(e.contains("port 0 is not valid"), "{e}");
        let e = parse_addr("[::1]:70000").unwrap_err();
        assert!(e.contains("[ADDR]:PORT"), "{e}");
        let e = parse_addr("localhost:9640").unwrap_err();
        assert!(e.contains("not an address"), "{e}");
    }

    #[test]
    fn loopback_is_told_apart() {
        for a in ["[::1]:1", "127.0.0.1:1", "[::ffff:127.0.0.1]:1"] {
            assert!(is_loopback(&a.parse().unwrap()), "{a}");
        }
        for a in ["[::]:1", "0.0.0.0:1", "[fd00::1]:1", "192.0.2.1:1"] {
            assert!(!is_loopback(&a.parse().unwrap()), "{a}");
        }
    }

    #[test]
    fn a_restarted_worker_adds_on() {
        let engine = v6fw_engine::Engine::new(v6fw_engine::Policy::default());
        let blocks = WorkerBlocks::default();
        let (a, b) = (engine.counters().register(), engine.counters().register());
        a.bump(v6fw_engine::Reason::PortClosed);
        b.bump(v6fw_engine::Reason::PortClosed);
        b.bump(v6fw_engine::Reason::OpenPort);
        b.bump_not_recorded();
        blocks.add("nfqueue-0", Some(0), a);
        blocks.add("nfqueue-0", Some(0), b);
        let r = blocks.read();
        assert_eq!(r.len(), 1);
        assert_eq!(
            (r[0].worker.as_str(), r[0].queue.as_str()),
            ("nfqueue-0", "0")
        );
        assert_eq!(r[0].totals.get(v6fw_engine::Reason::PortClosed), 2);
        assert_eq!(r[0].totals.packets(), 3);
        assert_eq!(r[0].totals.flows_not_recorded(), 1);
        assert_eq!(r[0].restarts, 1);
    }
}
