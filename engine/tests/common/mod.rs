//! A decision harness and the test policy shared by the engine's integration
//! tests; the packets come from `v6fw_testkit::builders`.
#![allow(
    dead_code,
    unused_imports,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use v6fw_engine::{
    Connection, Decision, Engine, PacketMeta, Policy, PortPair, Protocol, Publisher, StateConfig,
    Worker,
};
pub use v6fw_testkit::builders::*;

/// `eth0`: own 22/tcp, 53/udp, 8080/tcp; ignores global 443/tcp.
pub const ETH0: u32 = 2;
/// `eth1`: firewall off.
pub const ETH1: u32 = 3;
/// `wlan0`: no own pairs, ignores nothing.
pub const WLAN0: u32 = 4;
/// No connection has this index.
pub const UNKNOWN_IF: u32 = 99;

pub const SECOND: u64 = 1_000_000_000;

pub fn pair(port: u16, proto: Protocol) -> PortPair {
    PortPair::new(port, proto).unwrap()
}

/// The test policy. Globals: 80/tcp, 443/tcp, 8080/tcp, 5353/udp.
pub fn test_policy() -> Policy {
    let mut p = Policy::default();
    p.open_global(pair(80, Protocol::Tcp), "http");
    p.open_global(pair(443, Protocol::Tcp), "https");
    p.open_global(pair(8080, Protocol::Tcp), "alt");
    p.open_global(pair(5353, Protocol::Udp), "mdns");
    let mut eth0 = Connection::new("eth0", "Ethernet", ETH0);
    eth0.open_port(pair(22, Protocol::Tcp), "ssh");
    eth0.open_port(pair(53, Protocol::Udp), "dns");
    eth0.open_port(pair(8080, Protocol::Tcp), "alt-own");
    eth0.ignore_global(pair(443, Protocol::Tcp));
    p.add_connection(eth0).unwrap();
    let mut eth1 = Connection::new("eth1", "Disabled", ETH1);
    eth1.enabled = false;
    p.add_connection(eth1).unwrap();
    p.add_connection(Connection::new("wlan0", "Wireless", WLAN0))
        .unwrap();
    p
}

/// One engine and one worker.
pub struct Harness {
    pub engine: Engine,
    /// The engine's one writer.
    pub publisher: Publisher,
    pub worker: Worker,
}

impl Harness {
    pub fn new(policy: Policy) -> Self {
        Self::with_state(policy, StateConfig::default())
    }

    pub fn with_state(policy: Policy, state: StateConfig) -> Self {
        let engine = Engine::with_state(policy, state);
        let worker = engine.worker();
        let publisher = engine.table().take_publisher().unwrap();
        Harness {
            engine,
            publisher,
            worker,
        }
    }

    pub fn decide(&mut self, pkt: &[u8], meta: PacketMeta) -> Decision {
        let snap = self.engine.table().pin();
        self.worker.decide(&snap, pkt, &meta)
    }

    /// SPEC.md's per-packet line without the frame number:
    /// `verdict reason proto dport`.
    pub fn line(&mut self, pkt: &[u8], meta: PacketMeta) -> String {
        line(&self.decide(pkt, meta))
    }

    /// Inbound on eth0 at time 0.
    pub fn inb(&mut self, pkt: &[u8]) -> String {
        self.line(pkt, PacketMeta::inbound(ETH0, 0))
    }

    /// Inbound on `if_index` at `now`.
    pub fn inb_at(&mut self, pkt: &[u8], if_index: u32, now: u64) -> String {
        self.line(pkt, PacketMeta::inbound(if_index, now))
    }

    /// Outbound on eth0 at `now`.
    pub fn out_at(&mut self, pkt: &[u8], now: u64) -> String {
        self.line(pkt, PacketMeta::outbound(ETH0, now))
    }
}

pub fn line(d: &Decision) -> String {
    let col = |v: Option<String>| v.unwrap_or_else(|| "-".to_string());
    format!(
        "{} {} {} {}",
        d.verdict(),
        d.reason,
        col(d.proto.map(|p| p.to_string())),
        col(d.dport.map(|p| p.to_string()))
    )
}

// ---------------------------------------------------------------------------
// Shared by the SPEC.md tests (spec_*.rs).

/// A harness on the test policy with default state settings.
pub fn h() -> Harness {
    Harness::new(test_policy())
}

/// Rewrites a packet's payload-length field, through the wire view (the one
/// place that knows where it lies).
#[allow(dead_code)] // not every test file edits lengths
pub fn set_payload_len(p: &mut [u8], len: u16) {
    v6fw_engine::wire::Ipv6Packet::new_checked(p)
        .unwrap()
        .set_payload_len(len);
}

/// Rewrites the length field of the extension header of kind `kind` right
/// after the fixed header, through the wire view.
#[allow(dead_code)] // not every test file edits lengths
pub fn set_first_ext_len(p: &mut [u8], kind: u8, units: u8) {
    let mut ip = v6fw_engine::wire::Ipv6Packet::new_checked(p).unwrap();
    v6fw_engine::wire::ExtHeader::new_checked(ip.payload_mut(), kind)
        .unwrap()
        .set_length_field(units);
}
