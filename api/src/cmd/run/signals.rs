//! The signals `v6fw run` handles besides the stop signals (SIGINT and
//! SIGTERM, see [`v6fw_capture::privilege`]), and the standard streams.
//!
//! - **SIGHUP** (what a closed terminal sends, and `systemctl reload`)
//!   never kills the daemon: it asks for a policy reload ([`take_reload`]).
//! - **SIGPIPE** is ignored, so a write to a closed pipe (`v6fw run | tee`,
//!   `tee` gone) fails with `EPIPE` instead of killing the process; every
//!   write of the daemon handles that error.
//! - A **closed standard stream** (`v6fw run >&-`) is reopened on
//!   `/dev/null` by Rust's runtime before `main` (Unix), so no socket the
//!   daemon opens can become its fd 1 and receive the totals.

use std::sync::atomic::{AtomicUsize, Ordering};

/// SIGHUPs received and not yet taken.
static RELOADS: AtomicUsize = AtomicUsize::new(0);

#[cfg(unix)]
extern "C" fn on_hup(_sig: libc::c_int) {
    // An atomic add only: async-signal-safe.
    RELOADS.fetch_add(1, Ordering::SeqCst);
}

/// Routes SIGHUP to [`take_reload`] and ignores SIGPIPE.
#[cfg(unix)]
pub fn install() -> std::io::Result<()> {
    let hup = on_hup as extern "C" fn(libc::c_int) as libc::sighandler_t;
    for (sig, handler) in [(libc::SIGHUP, hup), (libc::SIGPIPE, libc::SIG_IGN)] {
        // SAFETY: an all-zero sigaction is a valid starting point; the
        // handler only touches an atomic (async-signal-safe) or is SIG_IGN;
        // the mask is initialised with sigemptyset and the result checked.
        let rc = unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = handler;
            libc::sigemptyset(&mut sa.sa_mask);
            sa.sa_flags = libc::SA_RESTART;
            libc::sigaction(sig, &sa, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// No SIGHUP elsewhere.
#[cfg(not(unix))]
pub fn install() -> std::io::Result<()> {
    Ok(())
}

/// Whether a SIGHUP arrived since the last call (several count as one).
pub fn take_reload() -> bool {
    RELOADS.swap(0, Ordering::SeqCst) > 0
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn sighup_asks_for_a_reload_and_sigpipe_is_harmless() {
        install().unwrap_or_else(|e| panic!("{e}"));
        let _ = take_reload(); // start from none pending
                               // SAFETY: raising a signal this process handles.
        unsafe {
            libc::raise(libc::SIGHUP);
            libc::raise(libc::SIGHUP);
            libc::raise(libc::SIGPIPE);
        }
        assert!(take_reload(), "SIGHUP was not seen");
        assert!(!take_reload(), "two SIGHUPs are one reload");
    }
}
