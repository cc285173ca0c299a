//! What every piece shares: the lab's constants, the SIGINT/SIGTERM flag
//! and small helpers.

use std::fs;
use std::io;
use std::net::Ipv6Addr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The filtered side's address; the flood goes to it.
pub(crate) const FW_ADDR: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);
/// The open UDP port the flood is sent to.
pub(crate) const PORT: u16 = 9000;
/// The TCP port of the bulk stream.
pub(crate) const TCP_PORT: u16 = 5201;
/// The NFQUEUE both consumers read.
pub(crate) const QUEUE: u16 = 0;
/// v6fw's defaults, given to the naive loop too.
pub(crate) const COPY_RANGE: u16 = 256;
pub(crate) const QUEUE_LEN: u32 = 4096;
/// Datagrams per `sendmmsg`/`recvmmsg`.
pub(crate) const MMSG: usize = 64;
/// How long the queue is given to drain once the sender is done.
pub(crate) const DRAIN: Duration = Duration::from_millis(300);
/// How often the helpers look for their stop file.
pub(crate) const STOP_POLL: Duration = Duration::from_millis(50);

pub(crate) type Result<T> = std::result::Result<T, String>;

/// Set by SIGINT/SIGTERM: every wait gives up, the lab is dropped.
pub(crate) static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

pub(crate) fn install_signal_handlers() {
    let handler: extern "C" fn(libc::c_int) = on_signal;
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is
        // async-signal-safe; the function pointer lives for the program.
        unsafe {
            libc::signal(sig, handler as libc::sighandler_t);
        }
    }
}

pub(crate) fn interrupted() -> Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        return Err("interrupted".into());
    }
    Ok(())
}

pub(crate) fn os_err(what: &str) -> String {
    format!("{what}: {}", io::Error::last_os_error())
}

pub(crate) fn deadline_after(seconds: f64) -> Result<Instant> {
    let d = Duration::try_from_secs_f64(seconds.max(0.0))
        .map_err(|e| format!("bad duration {seconds}: {e}"))?;
    Ok(Instant::now() + d)
}

pub(crate) fn touch(path: &Path) -> Result<()> {
    fs::write(path, b"").map_err(|e| format!("cannot create {}: {e}", path.display()))
}

/// A zeroed `mmsghdr` whose message has the one buffer `iov`.
pub(crate) fn mmsghdr_for(iov: &mut libc::iovec) -> libc::mmsghdr {
    // SAFETY: mmsghdr is a plain C struct (pointers, lengths, flags) for
    // which all-zero bytes are a valid value (null pointers, no name,
    // no control data).
    let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
    m.msg_hdr.msg_iov = iov;
    m.msg_hdr.msg_iovlen = 1;
    m
}

/// CPU seconds (user + system) this process has used so far.
pub(crate) fn own_cpu_seconds() -> f64 {
    // SAFETY: an all-zero rusage is a valid value (plain integers and
    // timevals); getrusage only writes into the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid, writable rusage for the call.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return 0.0;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(u.ru_utime) + secs(u.ru_stime)
}
