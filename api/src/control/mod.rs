//! The control plane: a local socket through which a running daemon is
//! administered.
//!
//! - [`protocol`]: requests and replies (one JSON object per line) and
//!   [`protocol::dispatch`], which runs a request on a manager.
//! - [`server`]: the Unix socket server ([`server::serve`]); reads for
//!   everyone, changes for root and the `--admin-group` (`SO_PEERCRED`), a
//!   cap per uid with places kept for root.
//! - `peer` (Unix): who a client is and whether it is an admin.
//! - [`client`]: the client the command line uses.
//! - `pipe` (Windows): the same channel as a named pipe
//!   (`\\.\pipe\v6fw-control`); reads for everyone, changes for elevated
//!   administrators only; the same caps, from `admission`.
//! - `pipe_peer` (Windows): who is at the other end of the pipe; the client
//!   refuses a server that is not SYSTEM or an elevated Administrator.
//!
//! The protocol is documented in `docs/control-protocol.md`.

#[cfg(any(windows, test))]
mod admission;
pub mod client;
#[cfg(unix)]
pub mod peer;
#[cfg(windows)]
mod pipe;
#[cfg(windows)]
mod pipe_peer;
pub mod protocol;
pub mod server;

pub use client::Client;
pub use protocol::{dispatch, Caller, Reply, Request};
pub use server::{serve, serve_with, ServeOptions, DEFAULT_SOCKET};
