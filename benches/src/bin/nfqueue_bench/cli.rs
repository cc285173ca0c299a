//! The command line: the harness's options and the hidden subcommands it
//! re-executes itself with under `ip netns exec`.

use std::net::Ipv6Addr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::harness::harness;
use crate::naive::naive;
use crate::receiver::receive;
use crate::sender::send;
use crate::tcp::{tcp_receive, tcp_send};

/// NFQUEUE throughput: `v6fw run` against a naive nfq loop, alternating
/// rounds in two network namespaces with the same UDP flood.
#[derive(Parser, Debug)]
#[command(version)]
pub(crate) struct Args {
    /// Seconds of flood per case and round.
    #[arg(long, default_value_t = 5.0)]
    pub(crate) seconds: f64,
    /// Rounds; each runs the UDP cases C, D, A, B, E, the multi-queue
    /// cases F, G and the bulk TCP cases.
    #[arg(long, default_value_t = 2)]
    pub(crate) rounds: u32,
    /// One short round (<= 60 s in all): proves the harness works.
    #[arg(long)]
    pub(crate) quick: bool,
    /// The v6fw binary (default: `v6fw` next to this one, i.e.
    /// target/release/v6fw).
    #[arg(long, value_name = "PATH")]
    pub(crate) v6fw: Option<PathBuf>,
    /// Payload bytes per datagram.
    #[arg(long, default_value_t = 16)]
    pub(crate) payload: usize,
    /// Pin the consumer and the receiver to CPU 0 and the sender to the
    /// last CPU (`taskset`), instead of letting the scheduler place them.
    #[arg(long)]
    pub(crate) pin: bool,
    #[command(subcommand)]
    internal: Option<Internal>,
}

/// The pieces run inside a namespace (`ip netns exec NS nfqueue_bench ...`).
#[derive(Subcommand, Debug)]
enum Internal {
    /// Floods UDP to ADDR:PORT for SECONDS; prints `{"sent","seconds","errors"}`.
    #[command(name = "internal-send", hide = true)]
    Send {
        #[arg(long)]
        addr: Ipv6Addr,
        #[arg(long)]
        port: u16,
        #[arg(long)]
        seconds: f64,
        #[arg(long)]
        payload: usize,
        /// Sockets, one source address each.
        #[arg(long, default_value_t = 1)]
        flows: usize,
    },
    /// Streams TCP to ADDR:PORT for SECONDS; prints `{"sent","seconds","cpu"}`.
    #[command(name = "internal-tcp-send", hide = true)]
    TcpSend {
        #[arg(long)]
        addr: Ipv6Addr,
        #[arg(long)]
        port: u16,
        #[arg(long)]
        seconds: f64,
    },
    /// Reads one TCP stream on [::]:PORT; prints `{"received","cpu"}`.
    #[allow(rustdoc::broken_intra_doc_links)] // clap help: `[::]` is an address
    #[command(name = "internal-tcp-recv", hide = true)]
    TcpRecv(Listen),
    /// Counts datagrams on [::]:PORT until STOP exists; prints `{"received"}`.
    #[allow(rustdoc::broken_intra_doc_links)] // clap help: `[::]` is an address
    #[command(name = "internal-recv", hide = true)]
    Recv(Listen),
    /// The naive consumer; prints `{"decided","accepted","dropped","errors"}`.
    #[command(name = "internal-naive", hide = true)]
    Naive {
        #[arg(long)]
        queue: u16,
        #[arg(long)]
        open_udp: u16,
        #[arg(long)]
        ready: PathBuf,
        #[arg(long)]
        stop: PathBuf,
        #[arg(long)]
        max_seconds: f64,
    },
}

/// What both receivers take: the port, the ready and stop files, a bound.
#[derive(clap::Args, Debug)]
struct Listen {
    #[arg(long)]
    port: u16,
    #[arg(long)]
    ready: PathBuf,
    #[arg(long)]
    stop: PathBuf,
    #[arg(long)]
    max_seconds: f64,
}

pub(crate) fn main() -> ExitCode {
    let args = Args::parse();
    let outcome = match args.internal {
        Some(Internal::Send {
            addr,
            port,
            seconds,
            payload,
            flows,
        }) => send(addr, port, seconds, payload, flows),
        Some(Internal::TcpSend {
            addr,
            port,
            seconds,
        }) => tcp_send(addr, port, seconds),
        Some(Internal::TcpRecv(l)) => tcp_receive(l.port, &l.ready, &l.stop, l.max_seconds),
        Some(Internal::Recv(l)) => receive(l.port, &l.ready, &l.stop, l.max_seconds),
        Some(Internal::Naive {
            queue,
            open_udp,
            ready,
            stop,
            max_seconds,
        }) => naive(queue, open_udp, &ready, &stop, max_seconds),
        None => return harness(&args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nfqueue_bench: {e}");
            ExitCode::FAILURE
        }
    }
}
