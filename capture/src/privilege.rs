//! The rights a live backend needs, checked before anything is touched, and
//! the stop request (Ctrl-C, SIGTERM) turned into a flag.
//!
//! Linux: diverting packets and editing ip6tables needs `CAP_NET_ADMIN` in
//! the effective set (root has it). Windows: opening WinDivert needs an
//! elevated (Administrator) token.

use std::sync::atomic::{AtomicBool, Ordering};

/// What to tell a user who started `v6fw run` without the rights it needs.
#[cfg(not(windows))]
pub const NEEDS_RIGHTS: &str =
    "v6fw run needs root (CAP_NET_ADMIN) to divert packets: run it with sudo";

/// What to tell a user who started `v6fw run` without the rights it needs.
#[cfg(windows)]
pub const NEEDS_RIGHTS: &str = "v6fw run needs Administrator rights to divert packets \
     with WinDivert: run it from an elevated prompt (Run as administrator)";

/// The process lacks the rights to divert packets; displays [`NEEDS_RIGHTS`].
#[derive(Debug, thiserror::Error)]
#[error("{NEEDS_RIGHTS}")]
pub struct NotPrivileged;

/// `CAP_NET_ADMIN`'s bit in the capability sets.
#[cfg(target_os = "linux")]
const CAP_NET_ADMIN: u32 = 12;

/// Whether the `CapEff:` line of `/proc/self/status` has `CAP_NET_ADMIN`.
#[cfg(target_os = "linux")]
fn cap_net_admin_in(status: &str) -> Option<bool> {
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))?
        .trim();
    let caps = u64::from_str_radix(hex, 16).ok()?;
    Some(caps >> CAP_NET_ADMIN & 1 == 1)
}

/// Checks that this process may divert packets.
#[cfg(target_os = "linux")]
pub fn check() -> Result<(), NotPrivileged> {
    let from_caps = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| cap_net_admin_in(&s));
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    match from_caps {
        Some(true) => Ok(()),
        Some(false) => Err(NotPrivileged),
        None if root => Ok(()),
        None => Err(NotPrivileged),
    }
}

/// Checks that this process may divert packets.
#[cfg(windows)]
pub fn check() -> Result<(), NotPrivileged> {
    use windows::Win32::Foundation::{CloseHandle, HANDLE};
    use windows::Win32::Security::{
        GetTokenInformation, TokenElevation, TOKEN_ELEVATION, TOKEN_QUERY,
    };
    use windows::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

    let mut token = HANDLE::default();
    // SAFETY: GetCurrentProcess returns a pseudo-handle; `token` is a valid
    // out-pointer. The result is checked.
    if !unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut token) }.as_bool() {
        return Err(NotPrivileged);
    }
    let mut elevation = TOKEN_ELEVATION::default();
    let mut len = 0u32;
    // SAFETY: `elevation` is a TOKEN_ELEVATION and its exact size is passed;
    // `token` was opened with TOKEN_QUERY above.
    let ok = unsafe {
        GetTokenInformation(
            token,
            TokenElevation,
            Some(std::ptr::from_mut(&mut elevation).cast()),
            size_of::<TOKEN_ELEVATION>() as u32,
            &mut len,
        )
    }
    .as_bool();
    // SAFETY: `token` is a handle this function opened and closes once.
    unsafe { CloseHandle(token) };
    if ok && elevation.TokenIsElevated != 0 {
        Ok(())
    } else {
        Err(NotPrivileged)
    }
}

/// Other systems have no live backend.
#[cfg(not(any(target_os = "linux", windows)))]
pub fn check() -> Result<(), NotPrivileged> {
    Err(NotPrivileged)
}

/// Set by the signal / console handler; read with [`stop_requested`].
static STOP: AtomicBool = AtomicBool::new(false);

/// Asks for the same stop as SIGINT or Ctrl-C: what the Windows service's
/// Stop and Shutdown controls do.
pub fn request_stop() {
    STOP.store(true, Ordering::SeqCst);
}

/// Whether SIGINT/SIGTERM (Unix) or Ctrl-C/Ctrl-Break/close (Windows)
/// arrived since [`install_stop_handler`].
pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

#[cfg(unix)]
extern "C" fn on_signal(_sig: libc::c_int) {
    // Only an atomic swap and _exit: both async-signal-safe. A second signal
    // while the first is being handled (cleanup stuck) exits at once; rules
    // left behind are removed by the next start.
    if STOP.swap(true, Ordering::SeqCst) {
        // SAFETY: _exit is async-signal-safe and ends the process.
        unsafe { libc::_exit(130) };
    }
}

/// Routes SIGINT and SIGTERM to [`stop_requested`] (instead of killing the
/// process before it removes its rules). A second signal exits at once.
#[cfg(unix)]
pub fn install_stop_handler() -> std::io::Result<()> {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: an all-zero sigaction is a valid starting point; the
        // handler only stores to an atomic (async-signal-safe), the mask is
        // initialised with sigemptyset, and the result is checked.
        let rc = unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
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

#[cfg(windows)]
unsafe extern "system" fn on_console(_ctrl: u32) -> windows::Win32::Foundation::BOOL {
    STOP.store(true, Ordering::SeqCst);
    windows::Win32::Foundation::BOOL(1)
}

/// Routes Ctrl-C, Ctrl-Break and console close to [`stop_requested`].
#[cfg(windows)]
pub fn install_stop_handler() -> std::io::Result<()> {
    // SAFETY: `on_console` is a valid handler for the process's lifetime and
    // only stores to an atomic.
    let ok =
        unsafe { windows::Win32::System::Console::SetConsoleCtrlHandler(Some(on_console), true) };
    if ok.as_bool() {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// No stop handler on other systems.
#[cfg(not(any(unix, windows)))]
pub fn install_stop_handler() -> std::io::Result<()> {
    Ok(())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn reads_cap_net_admin() {
        let with = "Name:\tx\nCapEff:\t000001ffffffffff\n";
        let without = "CapEff:\t0000000000000000\n";
        let only_net_admin = "CapEff:\t0000000000001000\n";
        assert_eq!(cap_net_admin_in(with), Some(true));
        assert_eq!(cap_net_admin_in(without), Some(false));
        assert_eq!(cap_net_admin_in(only_net_admin), Some(true));
        assert_eq!(cap_net_admin_in("Name:\tx\n"), None);
    }
}
