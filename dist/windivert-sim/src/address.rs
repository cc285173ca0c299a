//! `WINDIVERT_ADDRESS` as WinDivert 2.x lays it out (80 bytes).

/// `WINDIVERT_LAYER_NETWORK`.
pub const LAYER_NETWORK: u32 = 0;

/// Bit of `Outbound` in the flags word (after Layer:8, Event:8, Sniffed:1).
const OUTBOUND_BIT: u32 = 17;
/// Bit of `IPv6`.
const IPV6_BIT: u32 = 20;

/// `WINDIVERT_ADDRESS`: timestamp, flags (Layer:8, Event:8, Sniffed,
/// Outbound, Loopback, Impostor, IPv6, IPChecksum, TCPChecksum,
/// UDPChecksum, Reserved1:8), Reserved2, and the layer's data (for the
/// network layer: `IfIdx`, `SubIfIdx`) in a 64-byte union.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Address {
    /// When the packet was seen, in `QueryPerformanceCounter` units.
    pub timestamp: i64,
    flags: u32,
    reserved2: u32,
    /// `Network.IfIdx`, `Network.SubIfIdx`, then the rest of the union.
    data: [u32; 16],
}

impl Address {
    /// A network-layer packet event: IPv6, the given direction and interface
    /// (sub-interface 0), checksums not claimed valid.
    pub fn network(timestamp: i64, outbound: bool, if_idx: u32) -> Address {
        let mut data = [0u32; 16];
        data[0] = if_idx;
        Address {
            timestamp,
            flags: LAYER_NETWORK | u32::from(outbound) << OUTBOUND_BIT | 1 << IPV6_BIT,
            reserved2: 0,
            data,
        }
    }

    /// The `Outbound` bit.
    pub fn outbound(&self) -> bool {
        self.flags >> OUTBOUND_BIT & 1 == 1
    }

    /// The `IPv6` bit.
    pub fn ipv6(&self) -> bool {
        self.flags >> IPV6_BIT & 1 == 1
    }

    /// `Network.IfIdx`.
    pub fn if_idx(&self) -> u32 {
        self.data[0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_windiverts_size_and_bits() {
        assert_eq!(std::mem::size_of::<Address>(), 80);
        let a = Address::network(5, true, 9);
        assert_eq!(a.flags, 0x0012_0000);
        assert!(a.outbound() && a.ipv6() && a.if_idx() == 9);
        assert!(!Address::network(5, false, 9).outbound());
    }
}
