//! `internal-send`, run in PEER: the UDP flood.

use std::io;
use std::net::{Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::common::{deadline_after, mmsghdr_for, own_cpu_seconds, Result, INTERRUPTED, MMSG};

/// How long the sender waits for the receiver's answer to its hello.
const HELLO_WAIT: Duration = Duration::from_secs(1);

/// The source address of flow `i` (0: PEER's own fd00::2; others the
/// extra addresses [`crate::lab::Lab::add_peer_addresses`] gives it).
pub(crate) fn flow_source(i: usize) -> Ipv6Addr {
    match i {
        0 => Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2),
        i => Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0x10, i as u16),
    }
}

/// A `sendmmsg` flood of identical datagrams, bounded in time, over `flows`
/// sockets (one source address each, taken in turn), after one hello
/// datagram of the first the receiver answers: that flow has then seen a
/// reply, so conntrack (where it runs) tracks it as ESTABLISHED before the
/// flood.
pub(crate) fn send(
    addr: Ipv6Addr,
    port: u16,
    seconds: f64,
    payload: usize,
    flows: usize,
) -> Result<()> {
    let mut socks = Vec::new();
    for i in 0..flows.clamp(1, 16) {
        let from = SocketAddr::from((flow_source(i), 0));
        let sock = UdpSocket::bind(from).map_err(|e| format!("sender bind {from}: {e}"))?;
        sock.connect(SocketAddr::from((addr, port)))
            .map_err(|e| format!("sender connect to [{addr}]:{port}: {e}"))?;
        socks.push(sock);
    }
    let first = socks.first().ok_or("no sender socket")?;
    first
        .send(b"hello")
        .map_err(|e| format!("sender hello to [{addr}]:{port}: {e}"))?;
    first
        .set_read_timeout(Some(HELLO_WAIT))
        .map_err(|e| format!("sender timeout: {e}"))?;
    let mut answer = [0u8; 64];
    let answered = first.recv(&mut answer).is_ok();
    let fds: Vec<_> = socks.iter().map(AsRawFd::as_raw_fd).collect();
    let data = vec![0x76u8; payload.clamp(1, 1400)];
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // Every message points at the same (read-only) buffer.
    let mut msgs: Vec<libc::mmsghdr> = (0..MMSG).map(|_| mmsghdr_for(&mut iov)).collect();
    let started = Instant::now();
    let deadline = deadline_after(seconds)?;
    // A bound no real rate reaches: 100 M datagrams/s.
    let max_calls = (seconds.max(0.0) * 100e6 / MMSG as f64) as u64 + 1;
    let (mut sent, mut errors) = (0u64, 0u64);
    let mut last_error = None;
    for call in 0..max_calls {
        let fd = fds
            .get(call as usize % fds.len())
            .copied()
            .unwrap_or_default();
        if Instant::now() >= deadline || INTERRUPTED.load(Ordering::Relaxed) {
            break;
        }
        // SAFETY: `msgs` holds MMSG initialised headers whose iovecs point
        // at `data`, which outlives the call; `fd` is an open socket of
        // `socks`.
        let rc = unsafe { libc::sendmmsg(fd, msgs.as_mut_ptr(), MMSG as libc::c_uint, 0) };
        if rc < 0 {
            // ENOBUFS, EAGAIN, ECONNREFUSED: the flood goes on.
            errors += 1;
            last_error = Some(io::Error::last_os_error().to_string());
        } else {
            sent += rc as u64;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({"sent": sent, "seconds": elapsed, "errors": errors,
                           "last_error": last_error, "answered": answered,
                           "cpu": own_cpu_seconds()})
    );
    Ok(())
}
