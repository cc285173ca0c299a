//! Decides `--count` packets of one kind (in batches of 1,024 copies, or as
//! the mixed batch) through the benchmark's own deciders, for an instruction
//! counter: the machine's timings move with its load, instruction counts do
//! not.
//!
//! ```text
//! bash benches/instructions.sh                # every kind, instructions per packet
//! valgrind --tool=callgrind target/release/instructions --kind tcp-syn --count 204800
//! ```
//! The script runs each kind twice (`--count N` and `--count 0`) under
//! callgrind and divides the difference by N, so set-up does not count.
//! No figure is asserted: docs/benchmarks.md reports what it measured.

use std::hint::black_box;

use clap::{Parser, ValueEnum};
use v6fw_benches::baseline::{
    baseline_pairs, bench_engine, bench_policy, BaselineDecider, BatchDecider, Floor,
    StdRwLockPorts, V6fwDecider,
};
use v6fw_benches::minimum::SpecMinimum;
use v6fw_testkit::packets::{self, MixedBatch};

/// Which packet to decide.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Kind {
    /// A TCP SYN to an open port (`kind/tcp_syn`).
    TcpSyn,
    /// A UDP datagram to an open port (`kind/udp`).
    Udp,
    /// A neighbour solicitation, hop limit 255 (`kind/icmpv6_ndp_hl255`).
    IcmpNdp,
    /// A TCP SYN behind three extension headers (`kind/ext_chain3`).
    ExtChain3,
    /// The first fragment of a UDP datagram (`kind/first_fragment`).
    FirstFragment,
    /// A payload length past the end (`kind/malformed`).
    Malformed,
    /// The reply of a recorded TCP flow (`established`).
    TcpEstablished,
    /// The reply of a recorded UDP flow (`established`).
    UdpEstablished,
    /// UDP to a closed port: a flow-table miss, then `port_closed`.
    UdpClosed,
    /// The TCP SYN of `tcp-syn`, decided by the least SPEC.md allows
    /// (`kind/tcp_syn/spec_minimum`).
    TcpSynMinimum,
    /// The UDP datagram of `udp`, decided by the least SPEC.md allows
    /// (`kind/udp/spec_minimum`).
    UdpMinimum,
    /// The 1,024-packet mixed batch (`mixed_1024/v6fw`): per packet of it.
    Mixed,
    /// etherparse + std `RwLock` on the mixed batch
    /// (`mixed_1024/etherparse_std_rwlock`).
    MixedStdRwlock,
    /// The floor on the mixed batch (`mixed_1024/bare_floor`): a port read
    /// at a fixed offset and one bit test.
    Floor,
}

/// Decide one kind of packet many times, for callgrind.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// The packet.
    #[arg(long, value_enum, required_unless_present = "list")]
    kind: Option<Kind>,
    /// Print every kind's name, one a line, and decide nothing.
    #[arg(long)]
    list: bool,
    /// How many packets (in whole batches of 1,024, rounded down).
    #[arg(long, default_value_t = 204_800)]
    count: usize,
}

fn main() {
    let args = Args::parse();
    let Some(kind) = args.kind.filter(|_| !args.list) else {
        for k in Kind::value_variants() {
            if let Some(name) = k.to_possible_value() {
                println!("{}", name.get_name());
            }
        }
        return;
    };
    let engine = bench_engine();
    let (outbound, batch): (Vec<Vec<u8>>, Vec<Vec<u8>>) = match kind {
        Kind::TcpSyn | Kind::TcpSynMinimum => (vec![], vec![packets::tcp_syn(1, 40_000, 22)]),
        Kind::Udp | Kind::UdpMinimum => (vec![], vec![packets::udp(1, 40_000, 53)]),
        Kind::IcmpNdp => (vec![], vec![packets::icmpv6_ndp(1)]),
        Kind::ExtChain3 => (vec![], vec![packets::ext_chain3(1, 40_000, 22)]),
        Kind::FirstFragment => (vec![], vec![packets::first_fragment(1, 53, 9)]),
        Kind::Malformed => (vec![], vec![packets::malformed(1, 22)]),
        Kind::TcpEstablished => (
            vec![packets::tcp_out(1, 40_000, 443)],
            vec![packets::tcp_reply(1, 443, 40_000)],
        ),
        Kind::UdpEstablished => (
            vec![packets::udp_out(1, 40_000, 53)],
            vec![packets::udp(1, 53, 40_000)],
        ),
        Kind::UdpClosed => (vec![], vec![packets::udp(1, 40_000, 2_000)]),
        Kind::Mixed | Kind::MixedStdRwlock | Kind::Floor => {
            let m = MixedBatch::new(1_024, 1);
            (m.outbound, m.packets)
        }
    };
    // Batches of 1,024 as in `mixed_1024`: one epoch pin per batch.
    let batch = match batch.as_slice() {
        [one] => vec![one.clone(); 1_024],
        _ => batch,
    };
    let rounds = args.count / batch.len().max(1);
    let ports = StdRwLockPorts::new(baseline_pairs());
    let accepted = match kind {
        Kind::Floor => rounds_of(&mut Floor::new(), &batch, rounds),
        Kind::TcpSynMinimum | Kind::UdpMinimum => match SpecMinimum::new(&bench_policy()) {
            Some(mut min) => rounds_of(&mut min, &batch, rounds),
            None => {
                eprintln!(
                    "the bench policy has a scoped pair, which SpecMinimum does not implement"
                );
                std::process::exit(2);
            }
        },
        Kind::MixedStdRwlock => {
            rounds_of(&mut BaselineDecider::new(&ports, &outbound), &batch, rounds)
        }
        _ => rounds_of(&mut V6fwDecider::new(&engine, &outbound), &batch, rounds),
    };
    println!("{accepted} accepted");
}

/// Decides `batch` `rounds` times; returns the accept count.
fn rounds_of(decider: &mut impl BatchDecider, batch: &[Vec<u8>], rounds: usize) -> usize {
    (0..rounds)
        .map(|_| decider.decide_batch(black_box(batch)))
        .sum()
}
