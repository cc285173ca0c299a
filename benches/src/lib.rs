//! v6fw-benches: v6fw's benchmarks, throughput harness and their baselines
//! (the packets they measure come from `v6fw_testkit::packets`).
//!
//! - [`baseline`]: the same job done the obvious way — etherparse
//!   `SlicedPacket::from_ip` plus a `HashSet<(u16, u8)>` behind
//!   `std::sync::RwLock`, `parking_lot::RwLock` or `arc_swap::ArcSwap`, with a
//!   per-worker flow table like v6fw's — and v6fw's own batch decider.
//! - [`harness`]: the multi-threaded throughput and RSS measurements behind
//!   the `throughput` binary.
//! - [`capture`]: reading IPv6 packets out of pcap/pcapng files (fuzz seeds).
//! - [`minimum`]: the least SPEC.md lets a TCP SYN or UDP decision cost (a
//!   special-purpose decider, timed beside v6fw's as a bound, not a firewall).
//!
//! The key choice: the baselines live here, beside v6fw's decider, and every
//! figure is a ratio measured in the same run on the same packets, because
//! this machine is shared and absolute nanoseconds move with its load.

pub mod baseline;
pub mod capture;
pub mod harness;
pub mod minimum;
