//! The network namespace's open IPv6 sessions, read from the kernel over
//! `NETLINK_SOCK_DIAG` (inet_diag, as `ss` does, without running it), so
//! that `v6fw run` can adopt them as confirmed flows before its rules go in:
//! an SSH session open before the start (or before a restart after a crash)
//! is not cut as `port_closed` on its next segment.
//!
//! One dump per protocol: `SOCK_DIAG_BY_FAMILY` with an `inet_diag_req_v2`
//! for `AF_INET6` and TCP (state ESTABLISHED) or UDP (state ESTABLISHED: a
//! connected socket). Layouts from `<linux/sock_diag.h>` and
//! `<linux/inet_diag.h>`; every read is a bounds-checked slice. IPv4-mapped
//! ends (`::ffff:a.b.c.d`, IPv4 traffic v6fw never sees) and loopback
//! sessions (never queued) are left out.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use super::netlink::{for_each_raw, u32_ne, NLMSG_ERROR, NLMSG_HDRLEN};
use crate::backend::CaptureError;

/// `NETLINK_SOCK_DIAG`.
const NETLINK_SOCK_DIAG: libc::c_int = 4;
/// `SOCK_DIAG_BY_FAMILY`.
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `NLMSG_DONE`.
const NLMSG_DONE: u16 = 3;
/// `NLM_F_REQUEST | NLM_F_DUMP` (`NLM_F_ROOT | NLM_F_MATCH`).
const REQUEST_DUMP: u16 = 0x1 | 0x300;
/// `sizeof(struct inet_diag_req_v2)`: family, protocol, ext, pad, states, sockid (48).
const REQ_LEN: usize = 8 + 48;
/// `TCP_ESTABLISHED` (also a connected UDP socket's state).
const TCP_ESTABLISHED: u32 = 1;
/// `AF_INET6`.
const AF_INET6: u8 = 10;
/// How long the whole dump may take.
const DUMP_LIMIT: Duration = Duration::from_secs(3);

/// One open session: protocol (6 or 17) and its local and remote ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    /// 6 (TCP) or 17 (UDP).
    pub proto: u8,
    /// Local address and port.
    pub local: ([u8; 16], u16),
    /// Remote address and port.
    pub remote: ([u8; 16], u16),
}

/// The established TCP connections and connected UDP sockets (IPv6) of this
/// process's network namespace. A kernel without UDP socket diagnostics
/// (`udp_diag` not loaded: `ENOENT`) gives the TCP sessions only, with a
/// warning.
pub fn established() -> Result<Vec<Session>, CaptureError> {
    let mut all = dump(6)?;
    match dump(17) {
        Ok(udp) => all.extend(udp),
        Err(CaptureError::Os { error, .. }) if error.raw_os_error() == Some(libc::ENOENT) => {
            tracing::warn!(
                "the kernel cannot list UDP sockets (load the udp_diag module): \
                 connected UDP sockets are not adopted"
            );
        }
        Err(e) => return Err(e),
    }
    Ok(all)
}

/// The `SOCK_DIAG_BY_FAMILY` dump request for `proto`.
fn request(proto: u8) -> Vec<u8> {
    let mut b = Vec::with_capacity(NLMSG_HDRLEN + REQ_LEN);
    let len = u32::try_from(NLMSG_HDRLEN + REQ_LEN).unwrap_or(u32::MAX);
    b.extend_from_slice(&len.to_ne_bytes());
    b.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    b.extend_from_slice(&REQUEST_DUMP.to_ne_bytes());
    b.extend_from_slice(&1u32.to_ne_bytes()); // sequence
    b.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel
    b.extend_from_slice(&[AF_INET6, proto, 0, 0]);
    b.extend_from_slice(&(1u32 << TCP_ESTABLISHED).to_ne_bytes());
    b.resize(NLMSG_HDRLEN + REQ_LEN, 0); // inet_diag_sockid: any
    b
}

fn addr(b: &[u8], at: usize) -> Option<[u8; 16]> {
    b.get(at..)?.first_chunk::<16>().copied()
}

/// What one received datagram said.
#[derive(Debug, PartialEq, Eq)]
enum Part {
    /// More messages follow.
    More,
    /// `NLMSG_DONE`.
    Done,
    /// `NLMSG_ERROR` with this (negative) errno.
    Error(i32),
}

/// Parses one datagram of the dump, appending its sessions to `out`.
fn parse(buf: &[u8], proto: u8, out: &mut Vec<Session>) -> Part {
    let mut part = Part::More;
    for_each_raw(buf, |ty, at, end| {
        let body = buf.get(at + NLMSG_HDRLEN..end).unwrap_or(&[]);
        match ty {
            NLMSG_DONE => part = Part::Done,
            NLMSG_ERROR => part = Part::Error(u32_ne(body, 0).map_or(-1, |e| e as i32)),
            SOCK_DIAG_BY_FAMILY => out.extend(session(body, proto)),
            _ => {}
        }
        part == Part::More
    });
    part
}

/// An `inet_diag_msg`: family, state, timer, retrans, then the sockid
/// (be16 sport, be16 dport, `src[16]`, `dst[16]`, if, `cookie[2]`).
fn session(msg: &[u8], proto: u8) -> Option<Session> {
    if *msg.first()? != AF_INET6 {
        return None;
    }
    let sport = u16::from_be_bytes(*msg.get(4..)?.first_chunk::<2>()?);
    let dport = u16::from_be_bytes(*msg.get(6..)?.first_chunk::<2>()?);
    let (src, dst) = (addr(msg, 8)?, addr(msg, 24)?);
    let mapped = |a: &[u8; 16]| a.starts_with(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);
    let loopback = |a: &[u8; 16]| u128::from_be_bytes(*a) == 1;
    if mapped(&src) || mapped(&dst) || loopback(&src) || loopback(&dst) || dport == 0 {
        return None;
    }
    Some(Session {
        proto,
        local: (src, sport),
        remote: (dst, dport),
    })
}

/// Dumps the established IPv6 sockets of `proto`.
fn dump(proto: u8) -> Result<Vec<Session>, CaptureError> {
    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            NETLINK_SOCK_DIAG,
        )
    };
    if fd < 0 {
        return Err(CaptureError::last_os(
            "cannot open a sock_diag netlink socket to read the open sessions",
        ));
    }
    // SAFETY: `fd` is a new descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let req = request(proto);
    // SAFETY: an all-zero sockaddr_nl (port 0) addresses the kernel.
    let mut to: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    to.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    // SAFETY: `req` and `to` are valid for the lengths passed.
    let rc = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            req.as_ptr().cast(),
            req.len(),
            0,
            std::ptr::from_ref(&to).cast(),
            size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(CaptureError::last_os(
            "cannot ask the kernel for the open sessions",
        ));
    }
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let deadline = Instant::now() + DUMP_LIMIT;
    while Instant::now() < deadline {
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let ready = unsafe { libc::poll(&mut pfd, 1, 200) };
        if ready <= 0 {
            continue;
        }
        // SAFETY: `buf` is valid for writes of its length.
        let n = unsafe {
            libc::recv(
                fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        let Ok(n) = usize::try_from(n) else {
            let e = std::io::Error::last_os_error();
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
            ) {
                continue;
            }
            return Err(CaptureError::os("cannot read the open sessions", e));
        };
        match parse(buf.get(..n).unwrap_or(&[]), proto, &mut out) {
            Part::More => {}
            Part::Done => return Ok(out),
            Part::Error(e) => {
                return Err(CaptureError::os(
                    "the kernel refused to list the open sessions (inet_diag)",
                    std::io::Error::from_raw_os_error(-e),
                ))
            }
        }
    }
    Err(CaptureError::Protocol(format!(
        "the kernel did not finish listing the open sessions within {} s",
        DUMP_LIMIT.as_secs()
    )))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use crate::nfqueue::netlink::u16_ne;

    fn diag_msg(src: [u8; 16], sport: u16, dst: [u8; 16], dport: u16) -> Vec<u8> {
        let mut m = vec![0u8; NLMSG_HDRLEN + 72];
        let len = m.len() as u32;
        m[..4].copy_from_slice(&len.to_ne_bytes());
        m[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        let b = &mut m[NLMSG_HDRLEN..];
        b[0] = AF_INET6;
        b[1] = 1;
        b[4..6].copy_from_slice(&sport.to_be_bytes());
        b[6..8].copy_from_slice(&dport.to_be_bytes());
        b[8..24].copy_from_slice(&src);
        b[24..40].copy_from_slice(&dst);
        m
    }

    fn done() -> Vec<u8> {
        let mut m = vec![0u8; NLMSG_HDRLEN + 4];
        let len = m.len() as u32;
        m[..4].copy_from_slice(&len.to_ne_bytes());
        m[4..6].copy_from_slice(&NLMSG_DONE.to_ne_bytes());
        m
    }

    #[test]
    fn the_request_is_an_inet6_dump() {
        let r = request(6);
        assert_eq!(r.len(), 72);
        assert_eq!(u32_ne(&r, 0), Some(72));
        assert_eq!(u16_ne(&r, 4), Some(SOCK_DIAG_BY_FAMILY));
        assert_eq!(u16_ne(&r, 6), Some(0x301));
        assert_eq!(&r[16..20], &[AF_INET6, 6, 0, 0]);
        assert_eq!(u32_ne(&r, 20), Some(2));
    }

    #[test]
    fn parses_sessions_and_leaves_out_mapped_and_loopback() {
        let mut a = [0u8; 16];
        a[0] = 0xfd;
        a[15] = 1;
        let mut b = a;
        b[15] = 2;
        let mut mapped = [0u8; 16];
        mapped[10] = 0xff;
        mapped[11] = 0xff;
        mapped[15] = 9;
        let mut lo = [0u8; 16];
        lo[15] = 1;
        let mut buf = diag_msg(a, 22, b, 40000);
        buf.extend(diag_msg(mapped, 22, mapped, 1));
        buf.extend(diag_msg(lo, 5000, lo, 5001));
        let mut out = Vec::new();
        assert_eq!(parse(&buf, 6, &mut out), Part::More);
        assert_eq!(
            out,
            [Session {
                proto: 6,
                local: (a, 22),
                remote: (b, 40000),
            }]
        );
        assert_eq!(parse(&done(), 6, &mut out), Part::Done);
        // Cut anywhere: no panic, nothing invented.
        for cut in 0..buf.len() {
            let mut o = Vec::new();
            parse(&buf[..cut], 6, &mut o);
            assert!(o.len() <= 1);
        }
    }
}
