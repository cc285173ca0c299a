//! A stand-in for `WinDivert.dll` with no driver behind it, so that the real
//! `v6fw.exe run` can be driven end to end under Wine (or on a Windows host
//! without WinDivert64.sys). Put the built `WinDivert.dll` next to
//! `v6fw.exe` instead of the real one.
//!
//! - **Input**: the directory named by the environment variable
//!   `V6FW_WINDIVERT_SIM` (else: the first line of the file `WinDivert.sim`
//!   beside the DLL, for a service, which does not inherit the environment)
//!   holds `batch-0001.pkts`, `batch-0002.pkts`, ...
//!   (text, one packet per line: see [`input`]). Each file is handed out by
//!   one `WinDivertRecvEx` (more if the caller has room for fewer packets),
//!   with a `WINDIVERT_ADDRESS` per packet: network layer, packet event,
//!   `IPv6` set, `Outbound` and `Network.IfIdx` from the file, `Timestamp`
//!   from `QueryPerformanceCounter`. Write a file under another name and
//!   rename it, so it is never read half-written.
//! - **Log**: `sim.log` in that directory: the open, every parameter, every
//!   receive and send, one `verdict` line per packet (`accept`: re-injected
//!   by `WinDivertSendEx`; `drop`: not), the shutdown and the close (see
//!   [`sim`]). A re-injected packet that was never handed out, or comes back
//!   with another direction or interface, fails the send with
//!   `ERROR_INVALID_PARAMETER` and an `error` line.
//! - **End**: after the last file a receive blocks until the next file
//!   appears or `WinDivertShutdown` is called; then it fails with
//!   `ERROR_NO_DATA`, as the driver does.
//! - **Failing on purpose**: `V6FW_WINDIVERT_SIM_FAIL=CODE` makes
//!   `WinDivertOpen` fail with that Win32 error (5: access denied, 577: a
//!   driver that is not signed, ...). With no directory (neither the variable nor
//!   the file) it fails with
//!   `ERROR_FILE_NOT_FOUND`.
//!
//! Exported: `WinDivertOpen`, `WinDivertSetParam`, `WinDivertRecvEx`,
//! `WinDivertSendEx`, `WinDivertShutdown`, `WinDivertClose` (what v6fw
//! calls). Overlapped I/O is not simulated: an `OVERLAPPED` pointer is
//! refused with `ERROR_INVALID_PARAMETER`.

#![allow(non_snake_case)] // the crate is named for the DLL it stands in for: WinDivert.dll

pub mod address;
pub mod input;
pub mod sim;

#[cfg(windows)]
mod exports;
