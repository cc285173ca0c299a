//! v6fw-capture: where packets come from and where verdicts go.
//!
//! - [`mod@file`]: pcap and pcapng captures, streamed in constant memory, with the
//!   link-layer headers SPEC.md lists stripped down to the IP packet.
//! - [`replay`]: decide every frame of a capture as the live path would.
//! - [`backend`]: the batch trait the live backends share — receive a batch,
//!   decide it on one pinned snapshot, return verdicts — and the packet loop.
//! - `nfqueue` (Linux) and [`windivert`] (Windows): the live backends;
//!   [`rules`]: the ip6tables rules feeding NFQUEUE; [`offload`]: the counters
//!   of their offload rules; [`privilege`]: the
//!   rights check and the stop signal.
//!
//! The key design choice: a backend only moves batches ([`backend::Backend`]:
//! receive a batch, hand back its verdicts). The one packet loop
//! ([`backend::run_loop`]) pins one snapshot of the policy for the whole
//! batch and decides each packet with no allocation, lock or syscall, so the
//! OS is asked once per batch, not once per packet, and the decision is the
//! engine's own call for a live queue and a capture file ([`replay`]) alike:
//! what a replay shows is what the daemon does.

pub mod backend;
pub mod file;
pub mod link;
#[cfg(target_os = "linux")]
pub mod nfqueue;
pub mod offload;
pub mod privilege;
pub mod replay;
pub mod rules;
pub mod windivert;
