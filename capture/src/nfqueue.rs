//! Linux NFQUEUE: the kernel queues packets to this process, which answers
//! each one with accept or drop.
//!
//! One [`NfQueue`] is one queue number on its own netlink socket, driven by
//! one worker thread. Per batch it makes at most three system calls: a
//! `recvmmsg` that takes up to a batch of queued packets at once (a `poll`
//! before it only when the queue was empty), and one `sendto` carrying all
//! verdicts: a `NFQNL_MSG_VERDICT` for each dropped packet, then a single
//! `NFQNL_MSG_VERDICT_BATCH` that accepts every remaining packet up to the
//! last accepted id (the kernel hands packets over in id order, so those are
//! exactly the ones this batch accepted). `NF_ACCEPT` goes on with the next
//! netfilter hook: queued from `mangle` (v6fw's rules), the packet then
//! meets the `filter` table and the admin's rules. With an accept mark
//! (`--mark-bit`, for an NFQUEUE rule in the middle of a chain) an accepted
//! packet gets its own `NFQNL_MSG_VERDICT` instead: `NF_REPEAT` with the
//! mark bit added, so the same hook runs again, a rule returns on the bit
//! and the rest of that chain sees the packet.
//!
//! The netlink protocol is spoken directly ([`netlink`]) rather than through
//! the `nfq` crate: `nfq` 0.2 has no batch receive, no batch verdict, no way
//! to wait with a timeout (its socket is private) and allocates a new buffer
//! whenever a message is still held while receiving the next.
//!
//! Setup per queue: bind, copy only `copy_range` bytes of each packet (enough
//! for the header chain), cap the kernel queue at `queue_len`, hand GSO/GRO
//! super-packets over unsegmented (`NFQA_CFG_F_GSO`: they are judged on their
//! headers), and optionally fail open (`NFQA_CFG_F_FAIL_OPEN`: the kernel
//! accepts instead of drops while the queue is full).
//!
//! Direction comes from the netfilter hook that queued the packet (INPUT is
//! inbound, OUTPUT outbound), so inbound and outbound share the queues and a
//! flow's state lives in one worker. The interface is `indev` inbound and
//! `outdev` outbound. `truncated` is set when the kernel says the packet is
//! longer than what it copied (`NFQA_CAP_LEN`): the payload-length check is
//! then skipped, as for a capture cut by its snap length.
//!
//! Beside the queue: [`drops`] reads the kernel's per-queue drop counters,
//! [`sessions`] the namespace's open sessions (to adopt as flows at start).

pub mod drops;
pub mod netlink;
pub mod sessions;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use v6fw_engine::wire::{next_header, Ipv6Packet, IPV6_VERSION};
use v6fw_engine::{Direction, Verdict};

use crate::backend::{Backend, CaptureError, Packet, MAX_BATCH};
use netlink::{for_each_message, hook, Message, PacketMsg, Writer};

/// Room for a packet message's metadata on top of the copied bytes.
const METADATA_ROOM: usize = 4096;

/// How one NFQUEUE is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueConfig {
    /// The queue number (`--queue-num` of the rule).
    pub queue: u16,
    /// Bytes copied per packet: enough for the whole header chain.
    pub copy_range: u16,
    /// The kernel's queue length; packets beyond it are dropped (or accepted with `fail_open`).
    pub queue_len: u32,
    /// Accept rather than drop when the queue is full.
    pub fail_open: bool,
    /// Packets per batch, 1..=[`MAX_BATCH`].
    pub batch: usize,
    /// The mark bit(s) of an accept: non-zero answers an accepted packet
    /// `NF_REPEAT` with these bits added to its mark, so the hook runs again,
    /// a rule returns on the bits ([`crate::rules::Rules::accept_mark`])
    /// and the packet goes on through the rest of that chain. Zero (the
    /// default): `NF_ACCEPT` in one batch verdict, on to the next hook.
    pub accept_mark: u32,
}

/// One bound NFQUEUE and the buffers of its batch.
pub struct NfQueue {
    fd: OwnedFd,
    queue: u16,
    name: String,
    slot: usize,
    buf: Vec<u8>,
    iov: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    packets: Vec<PacketMsg>,
    writer: Writer,
    verdict_errors: u64,
    accept_mark: u32,
}

// SAFETY: the raw pointers in `iov` and `hdrs` point into `buf`, `iov` and
// `hdrs` themselves: heap allocations owned by this value that are never
// resized after `open`, so moving the value to another thread moves only the
// owning handles and the pointers stay valid. Nothing is shared.
unsafe impl Send for NfQueue {}

impl NfQueue {
    /// Opens a netlink socket and binds queue `config.queue`.
    pub fn open(config: &QueueConfig) -> Result<Self, CaptureError> {
        let q = config.queue;
        // SAFETY: plain socket(2) call; the result is checked before use.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_NETFILTER,
            )
        };
        if fd < 0 {
            return Err(CaptureError::last_os(
                "cannot open a netfilter netlink socket (is this a Linux kernel with nfnetlink?)",
            ));
        }
        // SAFETY: `fd` is a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: an all-zero sockaddr_nl is valid; we set the family.
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: `addr` is a valid sockaddr_nl and its size is passed.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                std::ptr::from_ref(&addr).cast(),
                size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(CaptureError::last_os("cannot bind the netlink socket"));
        }
        set_int_opt(&fd, libc::SOL_NETLINK, libc::NETLINK_NO_ENOBUFS, 1);
        let slot = usize::from(config.copy_range) + METADATA_ROOM;
        let want = i32::try_from((config.queue_len as usize).saturating_mul(slot / 2))
            .unwrap_or(i32::MAX)
            .clamp(1 << 20, 64 << 20);
        set_int_opt(&fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, want);

        let batch = config.batch.clamp(1, MAX_BATCH);
        let mut nq = NfQueue {
            fd,
            queue: q,
            name: format!("nfqueue {q}"),
            slot,
            buf: vec![0u8; slot * batch],
            iov: Vec::with_capacity(batch),
            hdrs: Vec::with_capacity(batch),
            packets: Vec::with_capacity(batch),
            writer: Writer::with_capacity((batch + 1) * netlink::VERDICT_MARK_MSG_LEN),
            verdict_errors: 0,
            accept_mark: config.accept_mark,
        };
        nq.init_iovecs(batch);

        let mut w = Writer::with_capacity(256);
        w.bind(q, true);
        nq.request(&w, || {
            format!(
                "cannot bind NFQUEUE {q}: another process (another v6fw run?) may hold it; \
                 stop it or choose other --queues"
            )
        })?;
        w.clear();
        w.copy_range(q, u32::from(config.copy_range));
        nq.request(&w, || format!("cannot set the copy range of NFQUEUE {q}"))?;
        w.clear();
        w.queue_maxlen(q, config.queue_len);
        nq.request(&w, || format!("cannot set the length of NFQUEUE {q}"))?;
        w.clear();
        let flags = netlink::CFG_F_GSO
            | if config.fail_open {
                netlink::CFG_F_FAIL_OPEN
            } else {
                0
            };
        w.flags(q, flags, netlink::CFG_F_GSO | netlink::CFG_F_FAIL_OPEN);
        nq.request(&w, || {
            format!("cannot set the GSO/fail-open flags of NFQUEUE {q} (kernel too old?)")
        })?;
        Ok(nq)
    }

    fn init_iovecs(&mut self, batch: usize) {
        let base = self.buf.as_mut_ptr();
        for i in 0..batch {
            self.iov.push(libc::iovec {
                // SAFETY: `i * slot < buf.len()`: the offset stays inside `buf`.
                iov_base: unsafe { base.add(i * self.slot) }.cast(),
                iov_len: self.slot,
            });
        }
        let iov = self.iov.as_mut_ptr();
        for i in 0..batch {
            // SAFETY: an all-zero mmsghdr is valid (null name, no control).
            let mut h: libc::mmsghdr = unsafe { std::mem::zeroed() };
            // SAFETY: `i < batch == iov.len()`: the pointer stays inside `iov`.
            h.msg_hdr.msg_iov = unsafe { iov.add(i) };
            h.msg_hdr.msg_iovlen = 1;
            self.hdrs.push(h);
        }
    }

    /// How many verdicts the kernel refused so far (e.g. unknown ids).
    pub fn verdict_errors(&self) -> u64 {
        self.verdict_errors
    }

    fn send(&self, bytes: &[u8]) -> Result<(), CaptureError> {
        // SAFETY: an all-zero sockaddr_nl (port 0) addresses the kernel.
        let mut to: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        to.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        loop {
            // SAFETY: `bytes` and `to` are valid for the lengths passed.
            let rc = unsafe {
                libc::sendto(
                    self.fd.as_raw_fd(),
                    bytes.as_ptr().cast(),
                    bytes.len(),
                    0,
                    std::ptr::from_ref(&to).cast(),
                    size_of::<libc::sockaddr_nl>() as libc::socklen_t,
                )
            };
            if rc >= 0 {
                return Ok(());
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(CaptureError::os(
                    format!("cannot send verdicts to NFQUEUE {}", self.queue),
                    e,
                ));
            }
        }
    }

    /// Waits for the socket to be readable; `false` on timeout or signal.
    fn wait(&self, timeout: Duration) -> Result<bool, CaptureError> {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: one valid pollfd.
        let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
        if rc < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                return Ok(false);
            }
            return Err(CaptureError::os("poll on the NFQUEUE socket failed", e));
        }
        Ok(rc > 0)
    }

    /// Receives whatever is queued, up to a batch, without blocking.
    fn recv_some(&mut self) -> Result<usize, CaptureError> {
        for h in &mut self.hdrs {
            h.msg_len = 0;
            h.msg_hdr.msg_flags = 0;
        }
        let vlen = libc::c_uint::try_from(self.hdrs.len()).unwrap_or(1);
        // SAFETY: `hdrs` holds `vlen` initialised mmsghdr whose single iovec
        // each points to its own `slot`-byte region of `buf` (see `init_iovecs`).
        let rc = unsafe {
            libc::recvmmsg(
                self.fd.as_raw_fd(),
                self.hdrs.as_mut_ptr(),
                vlen,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if rc >= 0 {
            return Ok(usize::try_from(rc).unwrap_or(0));
        }
        let e = std::io::Error::last_os_error();
        match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted => Ok(0),
            _ => Err(CaptureError::os(
                format!("cannot receive from NFQUEUE {}", self.queue),
                e,
            )),
        }
    }

    /// Sends a config request and waits for its acknowledgement. Packets
    /// that arrive meanwhile are answered `NF_REPEAT`: the rule queues them
    /// again, to be decided once setup is complete.
    fn request(&mut self, w: &Writer, what: impl Fn() -> String) -> Result<(), CaptureError> {
        self.send(w.bytes())?;
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if !self.wait(Duration::from_millis(100))? {
                continue;
            }
            let n = self.recv_some()?;
            let mut status = None;
            let mut repeat = Writer::with_capacity(n * netlink::VERDICT_MSG_LEN);
            for (h, chunk) in self.hdrs.iter().zip(self.buf.chunks(self.slot)).take(n) {
                let len = (h.msg_len as usize).min(chunk.len());
                for_each_message(chunk.get(..len).unwrap_or(&[]), |m| match m {
                    Message::Error(e) => status = Some(e),
                    Message::Packet(p) => repeat.verdict(self.queue, p.id, netlink::NF_REPEAT),
                    Message::Other => {}
                });
            }
            if !repeat.bytes().is_empty() {
                self.send(repeat.bytes())?;
            }
            match status {
                Some(0) => return Ok(()),
                Some(e) => {
                    return Err(CaptureError::os(
                        what(),
                        std::io::Error::from_raw_os_error(-e),
                    ))
                }
                None => {}
            }
        }
        Err(CaptureError::Protocol(format!(
            "{}: the kernel did not answer within 2 s",
            what()
        )))
    }
}

impl Drop for NfQueue {
    fn drop(&mut self) {
        // Unbinding hands packets still queued back to the kernel, which
        // drops them; closing the socket (OwnedFd) would do the same.
        let mut w = Writer::with_capacity(64);
        w.bind(self.queue, false);
        let _ = self.send(w.bytes());
    }
}

fn set_int_opt(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, value: libc::c_int) {
    // SAFETY: `value` is a valid c_int and its size is passed. Failure only
    // loses a tuning option, so the result is ignored.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            std::ptr::from_ref(&value).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// A GSO/GRO super-packet above 64 KiB (BIG TCP) carries payload length 0
/// without a Jumbo option; the kernel's length is the truth. Rewrites the
/// copied header's payload length to what the kernel reports (capped at
/// 65,535) so the walk judges it on its headers, not as `malformed`. Only
/// for packets the kernel flags as GSO and whose first header is not a
/// hop-by-hop header (which could carry a real Jumbo option).
pub fn fix_gso_length(bytes: &mut [u8], skb_info: u32, full_len: usize) -> bool {
    if skb_info & netlink::SKB_GSO == 0 {
        return false;
    }
    let Ok(mut ip) = Ipv6Packet::new_checked(bytes) else {
        return false;
    };
    if ip.version() != IPV6_VERSION
        || ip.payload_len() != 0
        || ip.next_header() == next_header::HOP_BY_HOP
    {
        return false;
    }
    let payload = full_len.saturating_sub(Ipv6Packet::<&[u8]>::HEADER_LEN);
    ip.set_payload_len(u16::try_from(payload).unwrap_or(u16::MAX));
    true
}

impl Backend for NfQueue {
    fn recv_batch(&mut self, timeout: Duration) -> Result<usize, CaptureError> {
        self.packets.clear();
        let mut n = self.recv_some()?;
        if n == 0 {
            if !self.wait(timeout)? {
                return Ok(0);
            }
            n = self.recv_some()?;
        }
        let cap = self.packets.capacity();
        let mut errors = 0u64;
        let mut extra = 0usize;
        for i in 0..n {
            let Some(h) = self.hdrs.get(i) else { break };
            let base = i * self.slot;
            let len = (h.msg_len as usize).min(self.slot);
            let Some(chunk) = self.buf.get(base..base + len) else {
                break;
            };
            let packets = &mut self.packets;
            for_each_message(chunk, |m| match m {
                Message::Packet(mut p) if packets.len() < cap => {
                    p.payload = p.payload.start + base..p.payload.end + base;
                    packets.push(p);
                }
                Message::Packet(_) => extra += 1,
                Message::Error(e) if e != 0 => errors += 1,
                _ => {}
            });
        }
        if errors > 0 {
            if self.verdict_errors == 0 {
                tracing::warn!(queue = self.queue, "the kernel refused a verdict");
            }
            self.verdict_errors += errors;
        }
        if extra > 0 {
            // Never seen with NFQUEUE (one packet per datagram); they stay
            // queued and are answered by a later batch verdict.
            tracing::warn!(queue = self.queue, extra, "more packets than batch slots");
        }
        for i in 0..self.packets.len() {
            let Some(p) = self.packets.get(i) else { break };
            let (range, info, cap_len) = (p.payload.clone(), p.skb_info, p.cap_len);
            if let (Some(full), Some(bytes)) = (cap_len, self.buf.get_mut(range)) {
                fix_gso_length(bytes, info, full as usize);
            }
        }
        Ok(self.packets.len())
    }

    fn packet(&self, i: usize) -> Option<Packet<'_>> {
        let p = self.packets.get(i)?;
        // No payload (a message cut short): not shown, so it is dropped.
        let bytes = self.buf.get(p.payload.clone()).filter(|b| !b.is_empty())?;
        let (direction, if_index) = match p.hook {
            hook::LOCAL_OUT | hook::POST_ROUTING => (Direction::Outbound, p.outdev),
            _ => (Direction::Inbound, p.indev),
        };
        Some(Packet {
            bytes,
            direction,
            if_index,
            truncated: p.cap_len.is_some_and(|c| c as usize > bytes.len()),
        })
    }

    fn send_verdicts(&mut self, verdicts: &[Verdict]) -> Result<(), CaptureError> {
        self.writer.clear();
        let mut last_accept = None;
        for (p, v) in self.packets.iter().zip(verdicts) {
            match v {
                Verdict::Drop => self.writer.verdict(self.queue, p.id, netlink::NF_DROP),
                Verdict::Accept if self.accept_mark != 0 => self.writer.verdict_with_mark(
                    self.queue,
                    p.id,
                    netlink::NF_REPEAT,
                    p.mark | self.accept_mark,
                ),
                Verdict::Accept => last_accept = Some(p.id),
            }
        }
        if let Some(id) = last_accept {
            self.writer
                .verdict_batch(self.queue, id, netlink::NF_ACCEPT);
        }
        if self.writer.bytes().is_empty() {
            return Ok(());
        }
        self.send(self.writer.bytes())
    }

    fn name(&self) -> &str {
        &self.name
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    /// A GSO super-packet's first 60 bytes as the kernel queues it: a TCP
    /// header after the fixed one, payload length 0.
    fn gso_tcp() -> Vec<u8> {
        let mut p = Vec::new();
        etherparse::PacketBuilder::ipv6([0; 16], [0; 16], 64)
            .tcp(1, 2, 0, 0)
            .write(&mut p, &[])
            .unwrap();
        Ipv6Packet::new_checked(&mut p[..])
            .unwrap()
            .set_payload_len(0);
        p
    }

    fn payload_len(p: &[u8]) -> u16 {
        Ipv6Packet::new_checked(p).unwrap().payload_len()
    }

    #[test]
    fn gso_length_is_fixed_only_for_gso_without_hop_by_hop() {
        let mut p = gso_tcp();
        assert!(!fix_gso_length(&mut p, 0, 100_000));
        assert!(fix_gso_length(&mut p, netlink::SKB_GSO, 100_000));
        assert_eq!(payload_len(&p), 0xffff);
        let mut small = gso_tcp();
        assert!(fix_gso_length(&mut small, netlink::SKB_GSO, 1040));
        assert_eq!(payload_len(&small), 1000);
        let mut hbh = Vec::new();
        etherparse::PacketBuilder::ipv6([0; 16], [0; 16], 64)
            .udp(1, 2)
            .write(&mut hbh, &[])
            .unwrap();
        let mut hbh_ip = Ipv6Packet::new_checked(&mut hbh[..]).unwrap();
        hbh_ip.set_payload_len(0);
        hbh_ip.set_next_header(next_header::HOP_BY_HOP);
        assert!(!fix_gso_length(&mut hbh, netlink::SKB_GSO, 100_000));
        assert!(!fix_gso_length(&mut [0x60; 10], netlink::SKB_GSO, 100_000));
    }
}
