//! v6fw-api: the OpenPorts administration API, the policy store, the control
//! plane and the firewall log, on which the `v6fw` binary is built.
//!
//! - [`fw`]: Netfwv6.h in Rust's idiom: [`fw::FirewallManager`], its
//!   connections and open-port collections, and [`fw::FwError`], whose every
//!   value is one HRESULT ([`fw::Code`] holds the one table of them).
//! - [`store`]: the durable `policy.toml`, written atomically and read
//!   strictly.
//! - [`control`]: the local socket (a named pipe on Windows) through which a
//!   running daemon is administered, and its client.
//! - [`log`]: the Windows Firewall style log (`pfirewall.log`) and the hook
//!   that feeds it from the packet path.
//! - [`interfaces`]: the host's interfaces, as the connections of the policy.
//! - [`http`]: the small bounded HTTP server behind `v6fw run --metrics`.
//!
//! The key design choice: one writer. Every change, whether it comes from a
//! command, the control socket or a reload, goes through the
//! [`fw::FirewallManager`]: checked, written to the store, then published to
//! the engine in one swap, so the file on disk, the daemon and what a reader
//! sees never disagree, and a change that cannot be made durable is never
//! enforced. The command line itself lives in the binary (`src/main.rs` and
//! its `cli`/`cmd` modules): the library returns typed errors
//! ([`fw::FwError`], keeping the error behind it as its `source()`), and only
//! the binary adds context with `anyhow` and prints.

pub mod control;
pub mod fw;
pub mod http;
pub mod interfaces;
pub mod lock_file;
pub mod log;
#[cfg(unix)]
mod private_dir;
pub mod store;
#[cfg(windows)]
pub mod winacl;
