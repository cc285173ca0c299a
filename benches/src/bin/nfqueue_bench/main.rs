//! The NFQUEUE harness: packets per second through `v6fw run` against the
//! kernel's own limits and a naive one-packet-at-a-time nfq loop, in the
//! same run, with the same sender, inside two network namespaces.
//!
//! ```text
//! cargo build --release -p v6fw-api --bin v6fw
//! sudo target/release/nfqueue_bench --seconds 3 --rounds 3
//! sudo target/release/nfqueue_bench --quick   # one 2 s round, < 60 s: what CI runs
//! ```
//!
//! Namespace FW holds fd00::1/64, namespace PEER fd00::2/64 (and the extra
//! flows' sources), joined by a veth pair; no traffic leaves them and both
//! are deleted on exit (also on an error, a panic or Ctrl-C). Each case
//! re-executes this binary under `ip netns exec`: a receiver counting UDP
//! datagrams on fd00::1 port 9000 (FW; it answers the sender's hello, so
//! conntrack sees the flow ESTABLISHED), a `sendmmsg` flood of 16-byte
//! datagrams to it for T seconds (PEER), and the consumer if any. The UDP
//! cases, in this order each round:
//!
//! - **C**: no rule (the ceiling); **D**: the same policy by ip6tables and
//!   conntrack alone;
//! - **A**: `v6fw run --open 9000/udp --queues 0`; decided = its JSON totals;
//! - **B**: the same rule layout installed by the harness and the `nfq`
//!   crate's `Queue`: `recv()` one packet, etherparse
//!   `SlicedPacket::from_ip`, a `std::sync::RwLock<HashSet<(u16, u8)>>`,
//!   `verdict()` one by one. Same copy range (256) and queue length (4096);
//! - **E**: A with `--offload established`;
//! - **F/G**: A with 4 flows from 4 source addresses, `--queues 0` / `0-1`;
//!
//! then one bulk TCP stream with no rule, through v6fw, and through v6fw
//! with offload. The last four lines are `ratio v6fw/ceiling`, `ratio
//! v6fw/naive`, `ratio kernel/ceiling`, `ratio offload/ceiling`
//! (docs/benchmarks.md says what each divides).
//!
//! No figure is asserted: the exit code only says whether the harness ran;
//! docs/benchmarks.md judges the figures. Without root it explains why and
//! exits 0 with `--quick` (1 otherwise); with `V6FW_REQUIRE_LIVE=1` every
//! reason not to run is a failure. Linux only; elsewhere it says so and
//! exits 0.

use std::process::ExitCode;

#[cfg(target_os = "linux")]
mod bulk;
#[cfg(target_os = "linux")]
mod cli;
#[cfg(target_os = "linux")]
mod common;
#[cfg(target_os = "linux")]
mod harness;
#[cfg(target_os = "linux")]
mod lab;
#[cfg(target_os = "linux")]
mod naive;
#[cfg(target_os = "linux")]
mod receiver;
#[cfg(target_os = "linux")]
mod rounds;
#[cfg(target_os = "linux")]
mod sender;
#[cfg(target_os = "linux")]
mod tcp;

fn main() -> ExitCode {
    #[cfg(target_os = "linux")]
    {
        cli::main()
    }
    #[cfg(not(target_os = "linux"))]
    {
        eprintln!("nfqueue_bench: NFQUEUE is Linux only; nothing to measure here");
        ExitCode::SUCCESS
    }
}
