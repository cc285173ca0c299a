//! v6fw-capture: where packets come from and where verdicts go.
//!
//! - [`file`]: pcap and pcapng captures, streamed in constant memory, with the
//!   link-layer headers SPEC.md lists stripped down to the IP packet.
//! - [`replay`]: decide every frame of a capture as the live path would.
//!
//! The live backends (NFQUEUE on Linux, WinDivert on Windows) share one batch
//! trait: receive a batch, decide it on one pinned snapshot, return verdicts.

pub mod file;
pub mod link;
pub mod replay;
