//! `internal-tcp-send` (PEER) and `internal-tcp-recv` (FW): one bulk TCP
//! stream, 64 KiB writes for T seconds, counted at the receiver.

use std::io::{self, Read, Write};
use std::net::{Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::common::{deadline_after, own_cpu_seconds, touch, Result, INTERRUPTED};

/// Bytes per write and read.
const CHUNK: usize = 64 * 1024;

/// Streams to ADDR:PORT for `seconds`; prints `{"sent","seconds","cpu"}`.
pub(crate) fn tcp_send(addr: Ipv6Addr, port: u16, seconds: f64) -> Result<()> {
    let to = SocketAddr::from((addr, port));
    let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(5))
        .map_err(|e| format!("connect to {to}: {e}"))?;
    s.set_write_timeout(Some(Duration::from_millis(200)))
        .map_err(|e| format!("write timeout: {e}"))?;
    let data = vec![0x76u8; CHUNK];
    let started = Instant::now();
    let deadline = deadline_after(seconds)?;
    let mut sent = 0u64;
    // Bounded by the deadline; the count bound is one no link reaches.
    let max_writes = (seconds.max(0.0) * 1e6) as u64 + 1;
    for _ in 0..max_writes {
        if Instant::now() >= deadline || INTERRUPTED.load(Ordering::Relaxed) {
            break;
        }
        match s.write(&data) {
            Ok(n) => sent += n as u64,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(format!("write to {to}: {e}")),
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    drop(s);
    println!(
        "{}",
        serde_json::json!({"sent": sent, "seconds": seconds, "cpu": own_cpu_seconds()})
    );
    Ok(())
}

/// Accepts one stream on `[::]:port` and reads it to its end (or until
/// `stop` exists, or `max_seconds`); prints `{"received","cpu"}`.
pub(crate) fn tcp_receive(port: u16, ready: &Path, stop: &Path, max_seconds: f64) -> Result<()> {
    let l = TcpListener::bind(("::", port)).map_err(|e| format!("tcp bind {port}: {e}"))?;
    l.set_nonblocking(true)
        .map_err(|e| format!("nonblocking: {e}"))?;
    touch(ready)?;
    let deadline = deadline_after(max_seconds)?;
    let mut received = 0u64;
    let mut conn = None;
    while conn.is_none() && Instant::now() < deadline && !stop.exists() {
        match l.accept() {
            Ok((c, _)) => conn = Some(c),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(format!("accept: {e}")),
        }
    }
    if let Some(mut c) = conn {
        c.set_nonblocking(false)
            .and_then(|()| c.set_read_timeout(Some(Duration::from_millis(100))))
            .map_err(|e| format!("stream options: {e}"))?;
        let mut buf = vec![0u8; CHUNK];
        while Instant::now() < deadline && !INTERRUPTED.load(Ordering::Relaxed) {
            match c.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => received += n as u64,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if stop.exists() {
                        break;
                    }
                }
                Err(e) => return Err(format!("read: {e}")),
            }
        }
    }
    println!(
        "{}",
        serde_json::json!({"received": received, "cpu": own_cpu_seconds()})
    );
    Ok(())
}
