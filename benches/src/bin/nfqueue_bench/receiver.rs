//! `internal-recv`, run in FW: counts the datagrams the filter let through.

use std::io;
use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::common::{
    deadline_after, mmsghdr_for, own_cpu_seconds, touch, Result, INTERRUPTED, MMSG, STOP_POLL,
};

/// Counts datagrams on `[::]:port` with `recvmmsg` until `stop` exists and
/// the socket is empty, or `max_seconds` pass; the first datagram (the
/// sender's hello) is answered, so the flow has seen a reply.
pub(crate) fn receive(port: u16, ready: &Path, stop: &Path, max_seconds: f64) -> Result<()> {
    let sock = UdpSocket::bind(("::", port)).map_err(|e| format!("receiver bind {port}: {e}"))?;
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .map_err(|e| format!("receiver timeout: {e}"))?;
    let fd = sock.as_raw_fd();
    let size: libc::c_int = 8 << 20;
    // SAFETY: `size` is a c_int that outlives the call, its length is
    // given; a failure (not root) is harmless and ignored.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
    let mut bufs = vec![[0u8; 2048]; MMSG];
    let mut iovs: Vec<libc::iovec> = bufs
        .iter_mut()
        .map(|b| libc::iovec {
            iov_base: b.as_mut_ptr().cast(),
            iov_len: b.len(),
        })
        .collect();
    let mut msgs: Vec<libc::mmsghdr> = iovs.iter_mut().map(mmsghdr_for).collect();
    touch(ready)?;
    let deadline = deadline_after(max_seconds)?;
    let mut received = 0u64;
    let mut hello = [0u8; 64];
    while Instant::now() < deadline && !INTERRUPTED.load(Ordering::Relaxed) && !stop.exists() {
        if let Ok((_, from)) = sock.recv_from(&mut hello) {
            received += 1;
            sock.send_to(b"hello", from)
                .map_err(|e| format!("receiver answer to {from}: {e}"))?;
            break;
        }
    }
    let mut next_check = Instant::now();
    let mut stopping = false;
    // Bounded by the deadline; the count bound is one no rate reaches.
    let max_calls = (max_seconds.max(0.0) * 100e6) as u64 + 1;
    for _ in 0..max_calls {
        let now = Instant::now();
        if now >= deadline || INTERRUPTED.load(Ordering::Relaxed) {
            break;
        }
        if now >= next_check {
            stopping = stop.exists();
            next_check = now + STOP_POLL;
        }
        // SAFETY: `msgs` holds MMSG headers whose iovecs point at the
        // 2,048-byte buffers of `bufs`, alive and unaliased for the call.
        let rc = unsafe {
            libc::recvmmsg(
                fd,
                msgs.as_mut_ptr(),
                MMSG as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if rc > 0 {
            received += rc as u64;
            continue;
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EAGAIN | libc::EINTR) => {
                if stopping {
                    break; // told to stop, and the socket is empty
                }
            }
            _ => return Err(format!("recvmmsg: {e}")),
        }
    }
    println!(
        "{}",
        serde_json::json!({ "received": received, "cpu": own_cpu_seconds() })
    );
    Ok(())
}
