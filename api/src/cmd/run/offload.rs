//! `--offload established`: the option, and the daemon's reading of what the
//! kernel accepted for it (the offload rules' counters, read periodically
//! and once more before the rules are removed; never on the packet path).

use v6fw_capture::offload::{self, Offloaded};

/// What `--offload` lets the kernel accept without asking v6fw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Offload {
    /// Packets of flows conntrack tracks as ESTABLISHED or RELATED.
    Established,
}

/// The offload counters as last read (none while offload is off).
#[derive(Debug, Default)]
pub struct OffloadCounter {
    enabled: bool,
    last: Offloaded,
}

impl OffloadCounter {
    /// A counter that reads only when `enabled`.
    pub fn new(enabled: bool) -> Self {
        OffloadCounter {
            enabled,
            last: Offloaded::default(),
        }
    }

    /// Is offload on?
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Reads the rules' counters (spawns ip6tables). A failed read keeps
    /// the last figures.
    pub fn read(&mut self) {
        if !self.enabled {
            return;
        }
        match offload::read() {
            Ok(Some(o)) => self.record(o),
            Ok(None) => tracing::debug!("no offload rule found in V6FW-IN/V6FW-OUT"),
            Err(e) => tracing::debug!("cannot read the offload rules' counters: {e}"),
        }
    }

    /// Keeps `o` as the last reading.
    pub fn record(&mut self, o: Offloaded) {
        self.last = o;
    }

    /// The last reading.
    pub fn last(&self) -> Offloaded {
        self.last
    }

    /// The reading as JSON (`null` while offload is off).
    pub fn json(&self) -> serde_json::Value {
        if !self.enabled {
            return serde_json::Value::Null;
        }
        to_json(&self.last)
    }
}

/// One reading as the JSON object `v6fw run --json` and `v6fw stats --json`
/// print.
pub fn to_json(o: &Offloaded) -> serde_json::Value {
    serde_json::json!({
        "kernel_accepted_packets": o.packets(),
        "kernel_accepted_bytes": o.bytes(),
        "in_packets": o.in_packets,
        "out_packets": o.out_packets,
    })
}
