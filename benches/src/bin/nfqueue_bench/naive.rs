//! `internal-naive`, run in FW: case B, the one-packet-at-a-time nfq loop.

use std::collections::HashSet;
use std::io;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::RwLock;
use std::thread::sleep;
use std::time::{Duration, Instant};

use etherparse::{SlicedPacket, TransportSlice};

use crate::common::{deadline_after, touch, Result, COPY_RANGE, INTERRUPTED, QUEUE_LEN, STOP_POLL};

/// NF_INET_LOCAL_OUT: the hook of outbound packets.
const HOOK_LOCAL_OUT: u8 = 3;

/// The obvious decision: outbound passes; inbound is sliced by etherparse
/// and its `(port, protocol)` looked up under a read lock; ICMPv6 passes.
fn naive_decide(ports: &RwLock<HashSet<(u16, u8)>>, packet: &[u8], hook: u8) -> bool {
    if hook == HOOK_LOCAL_OUT {
        return true;
    }
    let Ok(sliced) = SlicedPacket::from_ip(packet) else {
        return false;
    };
    let key = match sliced.transport {
        Some(TransportSlice::Udp(u)) => (u.destination_port(), 17u8),
        Some(TransportSlice::Tcp(t)) => (t.destination_port(), 6u8),
        Some(TransportSlice::Icmpv6(_)) => return true,
        _ => return false,
    };
    // A poisoned lock still holds a valid set.
    let set = ports.read().unwrap_or_else(|e| e.into_inner());
    set.contains(&key)
}

/// The naive consumer: one `recv`, one decision, one `verdict` per packet.
pub(crate) fn naive(
    queue: u16,
    open_udp: u16,
    ready: &Path,
    stop: &Path,
    max_seconds: f64,
) -> Result<()> {
    let mut q = nfq::Queue::open().map_err(|e| format!("nfq open: {e}"))?;
    q.bind(queue)
        .map_err(|e| format!("nfq bind {queue}: {e} (is another consumer bound?)"))?;
    q.set_copy_range(queue, COPY_RANGE)
        .map_err(|e| format!("nfq copy range: {e}"))?;
    q.set_queue_max_len(queue, QUEUE_LEN)
        .map_err(|e| format!("nfq queue length: {e}"))?;
    // Non-blocking, so that the loop can end on time with an empty queue.
    q.set_nonblocking(true);
    let ports = RwLock::new(HashSet::from([(open_udp, 17u8)]));
    touch(ready)?;
    let deadline = deadline_after(max_seconds)?;
    let (mut decided, mut accepted, mut errors) = (0u64, 0u64, 0u64);
    let mut next_check = Instant::now();
    let max_iterations = (max_seconds.max(0.0) * 100e6) as u64 + 1;
    for i in 0..max_iterations {
        // The clock is read every 256 packets, not to tax the loop.
        if i % 256 == 0 {
            let now = Instant::now();
            if now >= deadline || INTERRUPTED.load(Ordering::Relaxed) {
                break;
            }
            if now >= next_check {
                if stop.exists() {
                    break;
                }
                next_check = now + STOP_POLL;
            }
        }
        match q.recv() {
            Ok(mut msg) => {
                let ok = naive_decide(&ports, msg.get_payload(), msg.get_hook());
                msg.set_verdict(if ok {
                    nfq::Verdict::Accept
                } else {
                    nfq::Verdict::Drop
                });
                q.verdict(msg).map_err(|e| format!("nfq verdict: {e}"))?;
                decided += 1;
                accepted += u64::from(ok);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // Empty queue: look at the stop file, then wait a little.
                if stop.exists() || Instant::now() >= deadline {
                    break;
                }
                sleep(Duration::from_micros(100));
            }
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::ENOBUFS)) => {
                errors += 1;
            }
            Err(e) => return Err(format!("nfq recv: {e}")),
        }
    }
    let _ = q.unbind(queue);
    println!(
        "{}",
        serde_json::json!({"decided": decided, "accepted": accepted,
                           "dropped": decided - accepted, "errors": errors})
    );
    Ok(())
}
