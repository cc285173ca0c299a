//! v6fw-engine: what v6fw decides for every IPv6 packet, with no I/O at all.
//!
//! - [`wire`]: smoltcp-style views of IPv6, its extension headers, TCP, UDP
//!   and ICMPv6; the only place that knows a byte offset. Each view has one
//!   checked constructor, after which no accessor can panic.
//! - [`walk`]: a zero-copy, allocation-free, panic-free walk of the IPv6 header
//!   chain on those views that yields what the decision needs (a small
//!   [`walk::Walk`] borrowing the packet), or SPEC.md's reason to stop.
//! - [`policy`]: the Netfwv6.h model — global pairs, connections with their
//!   own and ignored pairs, the ICMPv6 policy, the state switch.
//! - [`table`]: the port table. Writers build an immutable [`Snapshot`] and
//!   publish it with one atomic swap; readers pin the epoch once per batch and
//!   never lock. This is the key design choice: the packet path pays an index
//!   and a bit test per packet and nothing else, while the API still reads
//!   consistent sets, because a snapshot is never changed after publication.
//! - [`state`] / [`flows`]: the bounded, keyed-hash tables of per-worker
//!   state; flows are kept as conntrack keeps them, so a flood of unconfirmed
//!   flows never pushes out a confirmed one.
//! - [`Engine`] / [`Worker`]: the decision of SPEC.md (inbound and outbound,
//!   fragment memory, flow state) and per-worker counters: one path, one
//!   walk, for every packet.
//!
//! Time is always a parameter (nanoseconds of the caller's clock), so tests
//! and replays are deterministic.
//!
//! ```
//! use v6fw_engine::{Engine, PacketMeta, Policy, Connection, PortPair, Protocol, Reason};
//!
//! let mut policy = Policy::default();
//! let mut conn = Connection::new("eth0", "Ethernet", 2);
//! conn.open_port(PortPair::new(22, Protocol::Tcp).unwrap(), "ssh");
//! policy.add_connection(conn).unwrap();
//! let engine = Engine::new(policy);
//! let mut worker = engine.worker();
//!
//! let mut syn = Vec::new();
//! etherparse::PacketBuilder::ipv6([0xfe; 16], [0xfd; 16], 64)
//!     .tcp(40_000, 22, 0, 1024)
//!     .syn()
//!     .write(&mut syn, &[])
//!     .unwrap();
//! let snap = engine.table().pin();
//! let d = worker.decide(&snap, &syn, &PacketMeta::inbound(2, 0));
//! assert_eq!(d.reason, Reason::OpenPort);
//! ```

pub mod counters;
mod decide;
pub mod flows;
pub mod policy;
mod reason;
mod settings;
pub mod state;
mod sync;
pub mod table;
pub mod walk;
pub mod wire;

pub use counters::{Counters, Totals, WorkerCounters};
pub use decide::{Decision, Direction, Engine, PacketMeta, Worker};
pub use policy::{
    Connection, Connections, IcmpErrors, IcmpPolicy, IcmpRule, NameError, Opening, Policy,
    PolicyError, PortPair, PortRun, Prefix, PrefixError, Protocol, Scope, ScopedPair, Services,
    StateSettings,
};
pub use reason::{Reason, Verdict};
pub use state::{HashKey, StateConfig};
pub use table::{Admit, ConnTables, Pinned, PortSet, PortTable, Publisher, Snapshot};
