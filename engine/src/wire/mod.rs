//! Views of the wire formats the engine reads, in smoltcp's manner.
//!
//! Each view wraps a buffer (`T: AsRef<[u8]>`) and names the byte ranges of
//! its header once, in a private `mod field` under the RFC's diagram. Its one
//! checked constructor, `new_checked`, establishes the length contract (the
//! buffer holds the whole header); after it, no accessor can panic or read
//! past the buffer. Arbitrary bytes are safe to view: a buffer that breaks
//! the contract gets an [`Error`], never a panic.
//!
//! - [`Ipv6Packet`]: the fixed header (RFC 8200 §3).
//! - [`ExtHeader`]: hop-by-hop, routing, destination options, AH (RFC 8200
//!   §4, RFC 4302), with [`Ipv6Options`] over their options (Jumbo Payload,
//!   RFC 2675); [`FragmentHeader`] (RFC 8200 §4.5).
//! - [`TcpPacket`], [`UdpPacket`], [`Icmpv6Packet`] (RFC 9293, 768, 4443),
//!   and [`Icmpv6Packet::quoted`]: the packet an ICMPv6 error quotes.
//!
//! No file outside this module writes an IPv6, TCP, UDP or ICMPv6 offset.

mod ext;
pub mod icmpv6;
mod ipv6;
mod tcp;
mod udp;

pub use ext::{option_type, ExtHeader, FragmentHeader, Ipv6Option, Ipv6Options};
pub use icmpv6::{Icmpv6Packet, Quoted};
pub use ipv6::{addresses_of_cut, version_of, Ipv6Packet, IPV6_VERSION};
pub use tcp::TcpPacket;
pub use udp::UdpPacket;

/// Why a buffer cannot be viewed as a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The buffer ends before the header does.
    Truncated,
    /// A length field says less than the header's minimum (a TCP data offset
    /// under 5).
    Malformed,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Error::Truncated => "the buffer ends before the header does",
            Error::Malformed => "a length field is under the header's minimum",
        })
    }
}

impl std::error::Error for Error {}

/// Next-header (protocol) numbers (IANA "Assigned Internet Protocol Numbers").
pub mod next_header {
    /// IPv6 hop-by-hop options (RFC 8200 §4.3).
    pub const HOP_BY_HOP: u8 = 0;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// IPv6 routing header (RFC 8200 §4.4).
    pub const ROUTING: u8 = 43;
    /// IPv6 fragment header (RFC 8200 §4.5).
    pub const FRAGMENT: u8 = 44;
    /// Authentication header (RFC 4302).
    pub const AUTH: u8 = 51;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
    /// No next header (RFC 8200 §4.7).
    pub const NO_NEXT: u8 = 59;
    /// IPv6 destination options (RFC 8200 §4.6).
    pub const DEST_OPTS: u8 = 60;

    /// Whether `n` is one of the extension headers the walk reads.
    #[inline]
    pub const fn is_extension(n: u8) -> bool {
        matches!(n, HOP_BY_HOP | ROUTING | FRAGMENT | AUTH | DEST_OPTS)
    }
}

/// The `N` bytes at `at` of `b`, or zeros where `b` is shorter: the one
/// helper every view reads through, so an accessor can never panic.
#[inline(always)]
fn bytes<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    match b.get(at..).and_then(<[u8]>::first_chunk::<N>) {
        Some(a) => *a,
        None => [0; N],
    }
}

/// The big-endian `u16` at `at` (0 past the end).
#[inline(always)]
fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes(bytes(b, at))
}

/// The big-endian `u32` at `at` (0 past the end).
#[inline(always)]
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(bytes(b, at))
}

/// The byte at `at` (0 past the end).
#[inline(always)]
fn byte(b: &[u8], at: usize) -> u8 {
    b.get(at).copied().unwrap_or(0)
}

/// Writes `v` at `at`; does nothing past the end.
#[inline]
fn set_byte(b: &mut [u8], at: usize, v: u8) {
    if let Some(d) = b.get_mut(at) {
        *d = v;
    }
}

/// Writes the `N` bytes `v` at `at`; does nothing past the end: the one
/// helper every setter writes through, the mirror of [`bytes`].
#[inline]
fn set_bytes<const N: usize>(b: &mut [u8], at: usize, v: [u8; N]) {
    if let Some(d) = b.get_mut(at..).and_then(<[u8]>::first_chunk_mut::<N>) {
        *d = v;
    }
}

/// Writes `v` big-endian at `at`; does nothing past the end.
#[inline]
fn set_be16(b: &mut [u8], at: usize, v: u16) {
    set_bytes(b, at, v.to_be_bytes());
}

#[cfg(test)]
pub(crate) mod testing {
    /// Decodes a hex string of a real packet (whitespace ignored).
    pub fn hex(s: &str) -> Vec<u8> {
        let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
        digits
            .chunks(2)
            .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
            .collect()
    }
}
