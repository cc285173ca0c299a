//! The nfnetlink_queue wire format, built and parsed in safe code.
//!
//! Netlink headers are in host byte order; nfnetlink attribute payloads are
//! big-endian. Every read goes through bounds-checked slices: a short or
//! inconsistent message from the kernel ends the parse, it never panics.
//! Constants are from `<linux/netfilter/nfnetlink_queue.h>` and
//! `<linux/netfilter/nfnetlink.h>`.

use std::ops::Range;

/// `sizeof(struct nlmsghdr)`.
pub const NLMSG_HDRLEN: usize = 16;
/// `sizeof(struct nfgenmsg)`.
const NFGEN_HDRLEN: usize = 4;
/// `sizeof(struct nlattr)`.
const NLA_HDRLEN: usize = 4;
/// Attribute type bits (without `NLA_F_NESTED` / `NLA_F_NET_BYTEORDER`).
const NLA_TYPE_MASK: u16 = 0x3fff;

/// `NLMSG_ERROR`: an error or an acknowledgement.
pub const NLMSG_ERROR: u16 = 2;
/// `NLM_F_REQUEST`.
const NLM_F_REQUEST: u16 = 1;
/// `NLM_F_ACK`.
const NLM_F_ACK: u16 = 4;

/// `NFNL_SUBSYS_QUEUE`.
const SUBSYS_QUEUE: u16 = 3;
/// `NFQNL_MSG_PACKET`: a queued packet, kernel to user.
const MSG_PACKET: u16 = SUBSYS_QUEUE << 8;
/// `NFQNL_MSG_VERDICT`: one packet's verdict.
const MSG_VERDICT: u16 = (SUBSYS_QUEUE << 8) | 1;
/// `NFQNL_MSG_CONFIG`.
const MSG_CONFIG: u16 = (SUBSYS_QUEUE << 8) | 2;
/// `NFQNL_MSG_VERDICT_BATCH`: one verdict for every queued id up to the given one.
const MSG_VERDICT_BATCH: u16 = (SUBSYS_QUEUE << 8) | 3;

const NFQA_PACKET_HDR: u16 = 1;
const NFQA_VERDICT_HDR: u16 = 2;
const NFQA_MARK: u16 = 3;
const NFQA_IFINDEX_INDEV: u16 = 5;
const NFQA_IFINDEX_OUTDEV: u16 = 6;
const NFQA_PAYLOAD: u16 = 10;
const NFQA_CAP_LEN: u16 = 13;
const NFQA_SKB_INFO: u16 = 14;

const NFQA_CFG_CMD: u16 = 1;
const NFQA_CFG_PARAMS: u16 = 2;
const NFQA_CFG_QUEUE_MAXLEN: u16 = 3;
const NFQA_CFG_MASK: u16 = 4;
const NFQA_CFG_FLAGS: u16 = 5;

/// `NFQNL_CFG_CMD_BIND`.
const CMD_BIND: u8 = 1;
/// `NFQNL_CFG_CMD_UNBIND`.
const CMD_UNBIND: u8 = 2;
/// `NFQNL_COPY_PACKET`.
const COPY_PACKET: u8 = 2;

/// `NFQA_CFG_F_FAIL_OPEN`: accept instead of drop when the queue is full.
pub const CFG_F_FAIL_OPEN: u32 = 1;
/// `NFQA_CFG_F_GSO`: hand GSO packets over unsegmented.
pub const CFG_F_GSO: u32 = 4;
/// `NFQA_SKB_GSO` in `NFQA_SKB_INFO`: the packet is a GSO/GRO super-packet.
pub const SKB_GSO: u32 = 2;

/// `NF_DROP`.
pub const NF_DROP: u32 = 0;
/// `NF_ACCEPT`.
pub const NF_ACCEPT: u32 = 1;
/// `NF_REPEAT`: run the hook again (the rule queues the packet again).
pub const NF_REPEAT: u32 = 4;

/// Netfilter hooks (`enum nf_inet_hooks`).
pub mod hook {
    /// `NF_INET_PRE_ROUTING`.
    pub const PRE_ROUTING: u8 = 0;
    /// `NF_INET_LOCAL_IN`: the INPUT chain.
    pub const LOCAL_IN: u8 = 1;
    /// `NF_INET_FORWARD`.
    pub const FORWARD: u8 = 2;
    /// `NF_INET_LOCAL_OUT`: the OUTPUT chain.
    pub const LOCAL_OUT: u8 = 3;
    /// `NF_INET_POST_ROUTING`.
    pub const POST_ROUTING: u8 = 4;
}

/// Size of one verdict message (header, nfgenmsg, verdict attribute).
pub const VERDICT_MSG_LEN: usize = NLMSG_HDRLEN + NFGEN_HDRLEN + NLA_HDRLEN + 8;
/// Size of one verdict message that also sets the packet's mark.
pub const VERDICT_MARK_MSG_LEN: usize = VERDICT_MSG_LEN + NLA_HDRLEN + 4;

/// What a queued-packet message says, with the payload as a range of the
/// buffer it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketMsg {
    /// The id to answer with.
    pub id: u32,
    /// The netfilter hook that queued it.
    pub hook: u8,
    /// Input interface index (0 if none).
    pub indev: u32,
    /// Output interface index (0 if none).
    pub outdev: u32,
    /// Where the copied bytes are in the parsed buffer.
    pub payload: Range<usize>,
    /// The packet's full length, sent by the kernel only when it copied less.
    pub cap_len: Option<u32>,
    /// `NFQA_SKB_INFO` bits.
    pub skb_info: u32,
    /// The packet's mark (`NFQA_MARK`; the kernel sends it only when non-zero).
    pub mark: u32,
}

/// One netlink message of a received datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A queued packet.
    Packet(PacketMsg),
    /// `NLMSG_ERROR`: `0` acknowledges a request, otherwise a negative errno.
    Error(i32),
    /// Anything else (or a packet message without its header attribute).
    Other,
}

/// A host-order `u16` at `at`, if `b` holds it.
pub fn u16_ne(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(*b.get(at..)?.first_chunk::<2>()?))
}

/// A host-order `u32` at `at`, if `b` holds it.
pub fn u32_ne(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(*b.get(at..)?.first_chunk::<4>()?))
}

fn u32_be(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(*b.get(at..)?.first_chunk::<4>()?))
}

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Calls `f(type, start, end)` for every netlink message of a received
/// datagram `buf`, `start..end` being the whole message (header included)
/// in `buf`, while `f` returns `true`. Stops at the first inconsistent length.
pub fn for_each_raw(buf: &[u8], mut f: impl FnMut(u16, usize, usize) -> bool) {
    let mut at = 0usize;
    while let (Some(len), Some(ty)) = (u32_ne(buf, at), u16_ne(buf, at + 4)) {
        let len = len as usize;
        let Some(end) = at
            .checked_add(len)
            .filter(|&e| len >= NLMSG_HDRLEN && e <= buf.len())
        else {
            return;
        };
        if !f(ty, at, end) {
            return;
        }
        at = at.saturating_add(align4(len));
    }
}

/// Calls `f` for every netlink message in a received datagram `buf` (with
/// ranges relative to `buf`). Stops at the first inconsistent length.
pub fn for_each_message(buf: &[u8], mut f: impl FnMut(Message)) {
    for_each_raw(buf, |ty, at, end| {
        f(match ty {
            NLMSG_ERROR => {
                u32_ne(buf, at + NLMSG_HDRLEN).map_or(Message::Other, |e| Message::Error(e as i32))
            }
            MSG_PACKET => parse_packet(buf, at + NLMSG_HDRLEN + NFGEN_HDRLEN, end),
            _ => Message::Other,
        });
        true
    });
}

fn parse_packet(buf: &[u8], mut at: usize, end: usize) -> Message {
    let mut id = None;
    let mut p = PacketMsg {
        id: 0,
        hook: 0,
        indev: 0,
        outdev: 0,
        payload: 0..0,
        cap_len: None,
        skb_info: 0,
        mark: 0,
    };
    while let (Some(len), Some(ty)) = (u16_ne(buf, at), u16_ne(buf, at + 2)) {
        let len = usize::from(len);
        let data = at + NLA_HDRLEN;
        let Some(attr_end) = at
            .checked_add(len)
            .filter(|&e| len >= NLA_HDRLEN && e <= end)
        else {
            break;
        };
        match ty & NLA_TYPE_MASK {
            NFQA_PACKET_HDR => {
                id = u32_be(buf, data);
                p.hook = buf.get(data + 6).copied().unwrap_or(0);
            }
            NFQA_IFINDEX_INDEV => p.indev = u32_be(buf, data).unwrap_or(0),
            NFQA_IFINDEX_OUTDEV => p.outdev = u32_be(buf, data).unwrap_or(0),
            NFQA_PAYLOAD => p.payload = data..attr_end,
            NFQA_CAP_LEN => p.cap_len = u32_be(buf, data),
            NFQA_SKB_INFO => p.skb_info = u32_be(buf, data).unwrap_or(0),
            NFQA_MARK => p.mark = u32_be(buf, data).unwrap_or(0),
            _ => {}
        }
        at = at.saturating_add(align4(len));
    }
    match id {
        Some(id) => Message::Packet(PacketMsg { id, ..p }),
        None => Message::Other,
    }
}

/// Builds netlink requests into a reused buffer.
#[derive(Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
    start: usize,
}

impl Writer {
    /// A writer with room for `bytes` without growing.
    pub fn with_capacity(bytes: usize) -> Self {
        Writer {
            buf: Vec::with_capacity(bytes),
            start: 0,
        }
    }

    /// Empties the buffer (keeps its capacity).
    pub fn clear(&mut self) {
        self.buf.clear();
        self.start = 0;
    }

    /// The bytes written so far.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    fn begin(&mut self, ty: u16, flags: u16, queue: u16) {
        self.start = self.buf.len();
        self.buf.extend_from_slice(&0u32.to_ne_bytes()); // length, set in `end`
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf
            .extend_from_slice(&(NLM_F_REQUEST | flags).to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes()); // sequence
        self.buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel
        self.buf.push(libc_af_unspec());
        self.buf.push(0); // NFNETLINK_V0
        self.buf.extend_from_slice(&queue.to_be_bytes());
    }

    fn attr(&mut self, ty: u16, payload: &[u8]) {
        let len = NLA_HDRLEN + payload.len();
        self.buf
            .extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(payload);
        self.buf
            .resize(self.start + align4(self.buf.len() - self.start), 0);
    }

    fn end(&mut self) {
        let len = u32::try_from(self.buf.len() - self.start).unwrap_or(u32::MAX);
        if let Some(h) = self.buf.get_mut(self.start..self.start + 4) {
            h.copy_from_slice(&len.to_ne_bytes());
        }
    }

    /// `NFQNL_CFG_CMD_BIND` (or `UNBIND`) for `queue`, acknowledged.
    pub fn bind(&mut self, queue: u16, bind: bool) {
        self.begin(MSG_CONFIG, NLM_F_ACK, queue);
        let cmd = if bind { CMD_BIND } else { CMD_UNBIND };
        // struct nfqnl_msg_config_cmd { u8 command; u8 _pad; be16 pf; }
        self.attr(NFQA_CFG_CMD, &[cmd, 0, 0, 10]);
        self.end();
    }

    /// Copy the first `range` bytes of each packet, acknowledged.
    pub fn copy_range(&mut self, queue: u16, range: u32) {
        self.begin(MSG_CONFIG, NLM_F_ACK, queue);
        // struct nfqnl_msg_config_params { be32 copy_range; u8 copy_mode; } (packed)
        let r = range.to_be_bytes();
        self.attr(NFQA_CFG_PARAMS, &[r[0], r[1], r[2], r[3], COPY_PACKET]);
        self.end();
    }

    /// The kernel queue's maximum length, acknowledged.
    pub fn queue_maxlen(&mut self, queue: u16, len: u32) {
        self.begin(MSG_CONFIG, NLM_F_ACK, queue);
        self.attr(NFQA_CFG_QUEUE_MAXLEN, &len.to_be_bytes());
        self.end();
    }

    /// Sets the flags in `mask` to `flags`, acknowledged.
    pub fn flags(&mut self, queue: u16, flags: u32, mask: u32) {
        self.begin(MSG_CONFIG, NLM_F_ACK, queue);
        self.attr(NFQA_CFG_FLAGS, &flags.to_be_bytes());
        self.attr(NFQA_CFG_MASK, &mask.to_be_bytes());
        self.end();
    }

    /// One packet's verdict (not acknowledged; failures come back as errors).
    pub fn verdict(&mut self, queue: u16, id: u32, verdict: u32) {
        self.verdict_msg(MSG_VERDICT, queue, id, verdict);
    }

    /// One verdict for every packet still queued with an id up to `id`.
    pub fn verdict_batch(&mut self, queue: u16, id: u32, verdict: u32) {
        self.verdict_msg(MSG_VERDICT_BATCH, queue, id, verdict);
    }

    /// One packet's verdict that also sets its mark (`NFQA_MARK`), e.g.
    /// `NF_REPEAT` with the bit v6fw's chains return on.
    pub fn verdict_with_mark(&mut self, queue: u16, id: u32, verdict: u32, mark: u32) {
        self.begin(MSG_VERDICT, 0, queue);
        let (v, i) = (verdict.to_be_bytes(), id.to_be_bytes());
        self.attr(
            NFQA_VERDICT_HDR,
            &[v[0], v[1], v[2], v[3], i[0], i[1], i[2], i[3]],
        );
        self.attr(NFQA_MARK, &mark.to_be_bytes());
        self.end();
    }

    fn verdict_msg(&mut self, ty: u16, queue: u16, id: u32, verdict: u32) {
        self.begin(ty, 0, queue);
        let (v, i) = (verdict.to_be_bytes(), id.to_be_bytes());
        self.attr(
            NFQA_VERDICT_HDR,
            &[v[0], v[1], v[2], v[3], i[0], i[1], i[2], i[3]],
        );
        self.end();
    }
}

/// `AF_UNSPEC` for `nfgenmsg.nfgen_family`.
const fn libc_af_unspec() -> u8 {
    0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    /// A packet message as the kernel sends it: header, nfgenmsg, attributes.
    fn packet_msg(id: u32, hook: u8, indev: u32, payload: &[u8], cap_len: Option<u32>) -> Vec<u8> {
        let mut w = Writer::default();
        w.begin(MSG_PACKET, 0, 0);
        let i = id.to_be_bytes();
        w.attr(NFQA_PACKET_HDR, &[i[0], i[1], i[2], i[3], 0x86, 0xdd, hook]);
        w.attr(NFQA_IFINDEX_INDEV, &indev.to_be_bytes());
        w.attr(NFQA_PAYLOAD, payload);
        if let Some(c) = cap_len {
            w.attr(NFQA_CAP_LEN, &c.to_be_bytes());
        }
        w.attr(NFQA_SKB_INFO, &SKB_GSO.to_be_bytes());
        w.attr(NFQA_MARK, &0x40u32.to_be_bytes());
        w.end();
        w.buf
    }

    #[test]
    fn parses_a_packet_message() {
        let payload = [0x60u8, 1, 2, 3, 4];
        let buf = packet_msg(0x01020304, hook::LOCAL_IN, 7, &payload, Some(1500));
        let mut seen = Vec::new();
        for_each_message(&buf, |m| seen.push(m));
        let [Message::Packet(p)] = &seen[..] else {
            panic!("{seen:?}")
        };
        assert_eq!(p.id, 0x01020304);
        assert_eq!(p.hook, hook::LOCAL_IN);
        assert_eq!(p.indev, 7);
        assert_eq!(&buf[p.payload.clone()], &payload);
        assert_eq!(p.cap_len, Some(1500));
        assert_eq!(p.skb_info, SKB_GSO);
        assert_eq!(p.mark, 0x40);
    }

    #[test]
    fn a_repeat_verdict_carries_the_mark() {
        let mut w = Writer::default();
        w.verdict_with_mark(2, 7, NF_REPEAT, 0x0020_0040);
        let b = w.bytes();
        assert_eq!(b.len(), VERDICT_MARK_MSG_LEN);
        assert_eq!(u16_ne(b, 4), Some(MSG_VERDICT));
        assert_eq!(u32_be(b, 24), Some(NF_REPEAT));
        assert_eq!(u32_be(b, 28), Some(7));
        assert_eq!(u16_ne(b, 34), Some(NFQA_MARK));
        assert_eq!(u32_be(b, 36), Some(0x0020_0040));
    }

    #[test]
    fn parses_errors_and_several_messages() {
        let mut buf = packet_msg(1, hook::LOCAL_OUT, 0, &[0x60], None);
        let mut err = vec![0u8; 36];
        err[..4].copy_from_slice(&36u32.to_ne_bytes());
        err[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        err[16..20].copy_from_slice(&(-2i32).to_ne_bytes());
        buf.extend_from_slice(&err);
        let mut seen = Vec::new();
        for_each_message(&buf, |m| seen.push(m));
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[1], Message::Error(-2));
    }

    #[test]
    fn never_panics_on_cut_or_lying_messages() {
        let buf = packet_msg(9, hook::LOCAL_IN, 3, &[0x60; 64], Some(9000));
        for cut in 0..buf.len() {
            for_each_message(&buf[..cut], |_| {});
        }
        let mut lying = buf.clone();
        lying[NLMSG_HDRLEN + NFGEN_HDRLEN] = 0xff; // attribute length past the end
        for_each_message(&lying, |_| {});
        let mut huge = buf;
        huge[..4].copy_from_slice(&u32::MAX.to_ne_bytes());
        let mut n = 0;
        for_each_message(&huge, |_| n += 1);
        assert_eq!(n, 0);
    }

    #[test]
    fn verdicts_are_fixed_size() {
        let mut w = Writer::with_capacity(256);
        w.verdict(3, 42, NF_DROP);
        w.verdict_batch(3, 43, NF_ACCEPT);
        assert_eq!(w.bytes().len(), 2 * VERDICT_MSG_LEN);
        let b = w.bytes();
        assert_eq!(u32_ne(b, 0), Some(VERDICT_MSG_LEN as u32));
        assert_eq!(u16_ne(b, 4), Some(MSG_VERDICT));
        assert_eq!(&b[18..20], &3u16.to_be_bytes());
        assert_eq!(u32_be(b, 24), Some(NF_DROP));
        assert_eq!(u32_be(b, 28), Some(42));
        assert_eq!(u16_ne(b, VERDICT_MSG_LEN + 4), Some(MSG_VERDICT_BATCH));
    }

    #[test]
    fn config_params_attribute_is_padded() {
        let mut w = Writer::default();
        w.copy_range(0, 256);
        // header 16 + nfgen 4 + attr (4 + 5, padded to 12)
        assert_eq!(w.bytes().len(), 32);
        assert_eq!(u16_ne(w.bytes(), 20), Some(9));
    }
}
