//! Adopting a session the host already has as a flow.
//!
//! Stand-in until the engine branch lands: replaced at merge.

use crate::decide::{PacketMeta, Worker};
use crate::policy::Policy;
use crate::table::PortTable;
use crate::walk::walk;

impl Worker {
    /// Records the flow of an open session (`proto` 6 or 17, the host's
    /// `local` end and the `remote` end) as a confirmed flow, the way an
    /// outbound TCP segment without SYN (or a UDP datagram) on it would.
    /// Returns whether it was recorded (`false` for another protocol).
    ///
    /// Stand-in until the engine branch lands: replaced at merge.
    pub fn adopt_flow(
        &mut self,
        proto: u8,
        local: ([u8; 16], u16),
        remote: ([u8; 16], u16),
        now_ns: u64,
    ) -> bool {
        let mut p = [0u8; 60];
        let len: u16 = match proto {
            6 => 20,
            17 => 8,
            _ => return false,
        };
        p[0] = 0x60;
        p[4..6].copy_from_slice(&len.to_be_bytes());
        p[6] = proto;
        p[7] = 64;
        p[8..24].copy_from_slice(&local.0);
        p[24..40].copy_from_slice(&remote.0);
        p[40..42].copy_from_slice(&local.1.to_be_bytes());
        p[42..44].copy_from_slice(&remote.1.to_be_bytes());
        if proto == 6 {
            p[52] = 5 << 4;
            p[53] = 0x10; // ACK, no SYN: the handshake is done
        } else {
            p[44..46].copy_from_slice(&len.to_be_bytes());
        }
        let bytes = p.get(..40 + usize::from(len)).unwrap_or(&p);
        // A snapshot with state on, so the flow is recorded whatever the
        // live policy says (it only decides whether flows count).
        let table = PortTable::new(Policy::default());
        let snap = table.pin();
        let meta = PacketMeta::outbound(0, now_ns);
        self.decide_walked(&snap, &walk(bytes, false), &meta);
        true
    }
}

#[cfg(test)]
mod tests {
    use crate::{Engine, PacketMeta, Policy, Reason};

    #[test]
    fn an_adopted_session_lets_its_inbound_segments_in() {
        let engine = Engine::new(Policy::default());
        let mut worker = engine.worker();
        let (mut local, mut remote) = ([0u8; 16], [0u8; 16]);
        local[0] = 0xfd;
        local[15] = 1;
        remote[0] = 0xfd;
        remote[15] = 2;
        assert!(worker.adopt_flow(6, (local, 22), (remote, 40000), 1));
        // The peer's next segment of the SSH session: ACK to port 22.
        let mut seg = [0u8; 60];
        seg[0] = 0x60;
        seg[5] = 20;
        seg[6] = 6;
        seg[7] = 64;
        seg[8..24].copy_from_slice(&remote);
        seg[24..40].copy_from_slice(&local);
        seg[40..42].copy_from_slice(&40000u16.to_be_bytes());
        seg[42..44].copy_from_slice(&22u16.to_be_bytes());
        seg[52] = 5 << 4;
        seg[53] = 0x10;
        let snap = engine.table().pin();
        let d = worker.decide(&snap, &seg, &PacketMeta::inbound(2, 2));
        assert_eq!(d.reason, Reason::Established);
        // Another port of the same peer is still closed.
        seg[42..44].copy_from_slice(&23u16.to_be_bytes());
        let d = worker.decide(&snap, &seg, &PacketMeta::inbound(2, 3));
        assert_eq!(d.reason, Reason::PortClosed);
        assert!(!worker.adopt_flow(58, (local, 0), (remote, 0), 4));
    }
}
