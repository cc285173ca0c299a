//! v6fw-testkit: what v6fw's tests, benchmarks and fuzz targets share, and
//! nothing the firewall itself runs.
//!
//! - [`alloc`]: a counting global allocator, for the tests that show the
//!   packet path never allocates.
//! - [`builders`]: packets between given addresses (TCP, UDP, ICMPv6, any
//!   protocol) and hand-assembled extension-header chains, for the engine's
//!   and api's tests.
//! - [`packets`]: every packet kind (built with etherparse's `PacketBuilder`,
//!   an independent writer of the fields v6fw parses) and the deterministic
//!   mixed batch the headline benchmark figures are measured on.
//! - [`fuzz_checks`]: the invariants the fuzz targets check, also run on every
//!   committed corpus file by this crate's stable test (`tests/fuzz_corpus.rs`).
//! - [`raw`]: the OpenPorts calls from raw `LONG` numbers, as Netfwv6.h
//!   passes them, which only tests make.
//! - `netns` and `lab` (Linux): two network namespaces joined by a veth pair,
//!   removed on drop, and the live tests' lab that runs `v6fw` in them.
//!
//! The key design choice: test support is a crate of its own, a
//! dev-dependency of the product crates (engine, capture, api) and a
//! dependency of the tooling crates (benches, fuzz) only. The product crates
//! then hold no code that only a test calls, there is one copy of each packet
//! builder rather than one per test directory, and a fuzz check, a benchmark
//! and a test build the same bytes.

pub mod alloc;
pub mod builders;
pub mod fuzz_checks;
#[cfg(target_os = "linux")]
pub mod lab;
#[cfg(target_os = "linux")]
pub mod netns;
pub mod packets;
pub mod raw;
pub mod shared;
