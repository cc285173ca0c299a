//! Verdicts and the one reason each verdict carries (SPEC.md).

use std::fmt;

/// What happens to a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Let it through.
    Accept,
    /// Discard it.
    Drop,
}

impl Verdict {
    /// `accept` or `drop`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Verdict::Accept => "accept",
            Verdict::Drop => "drop",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! reasons {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal => $verdict:ident, )*) => {
        /// Why a packet got its verdict. `Display` is SPEC.md's snake_case name.
        ///
        /// Each reason belongs to exactly one verdict ([`Reason::verdict`]), so a
        /// decision can never pair an accept reason with a drop.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum Reason {
            $( $(#[$doc])* $variant, )*
        }

        impl Reason {
            /// Every reason, in SPEC.md's order.
            pub const ALL: [Reason; Reason::COUNT] = [$(Reason::$variant),*];

            /// SPEC.md's name, e.g. `port_closed`.
            pub const fn as_str(self) -> &'static str {
                match self { $(Reason::$variant => $name,)* }
            }

            /// The verdict this reason belongs to.
            pub const fn verdict(self) -> Verdict {
                match self { $(Reason::$variant => Verdict::$verdict,)* }
            }
        }
    };
}

reasons! {
    /// Version nibble is not 6, or the frame carries no IP packet.
    NotIpv6 = "not_ipv6" => Accept,
    /// Too short, a length field says more than there is, or a fragment
    /// whose length breaks RFC 8200 §4.5.
    Malformed = "malformed" => Drop,
    /// The connection's firewall is off.
    FirewallDisabled = "firewall_disabled" => Accept,
    /// An address no packet from another node may carry (RFC 4291): a
    /// multicast, IPv4-mapped or lone loopback source, a lone loopback,
    /// unspecified, reserved- or interface-local-multicast destination; or
    /// TCP to a multicast destination (RFC 1122 §4.2.3.10).
    BadAddress = "bad_address" => Drop,
    /// Hop-by-hop not first, a second fragment header, or a third destination-options header.
    BadExtensionOrder = "bad_extension_order" => Drop,
    /// A type 0 routing header (RFC 5095).
    RoutingHeader0 = "routing_header_0" => Drop,
    /// More than 8 extension headers.
    ChainTooLong = "chain_too_long" => Drop,
    /// Next header 59.
    NoUpperLayer = "no_upper_layer" => Drop,
    /// A first fragment without the whole header chain (RFC 7112).
    IncompleteChain = "incomplete_chain" => Drop,
    /// A non-first fragment whose first fragment was not seen.
    OrphanFragment = "orphan_fragment" => Drop,
    /// A non-first fragment whose data overlaps its first fragment's (RFC 5722).
    FragmentOverlap = "fragment_overlap" => Drop,
    /// Destination port is one of the connection's own open pairs.
    OpenPort = "open_port" => Accept,
    /// Destination port is open through a global pair.
    GlobalPort = "global_port" => Accept,
    /// The reply of a tracked outbound flow.
    Established = "established" => Accept,
    /// TCP/UDP to a pair that is open (own or global) only for other sources.
    OutOfScope = "out_of_scope" => Drop,
    /// TCP/UDP to a port that is not open.
    PortClosed = "port_closed" => Drop,
    /// ICMPv6 allowed by the ICMPv6 policy.
    IcmpAllowed = "icmp_allowed" => Accept,
    /// ICMPv6 refused by the ICMPv6 policy.
    IcmpPolicy = "icmp_policy" => Drop,
    /// With `icmp_errors = "related"`: an ICMPv6 error that quotes no packet the host sent.
    IcmpUnrelated = "icmp_unrelated" => Drop,
    /// Any other upper-layer protocol.
    UnsupportedProtocol = "unsupported_protocol" => Drop,
    /// Outbound packets are never blocked.
    Outbound = "outbound" => Accept,
}

impl Reason {
    /// How many reasons there are.
    pub const COUNT: usize = 21;

    /// The reason's position in [`Reason::ALL`], for counter arrays.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The reason for a SPEC.md name.
    pub fn from_name(name: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_spec_names_and_unique() {
        let names: Vec<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            names,
            [
                "not_ipv6",
                "malformed",
                "firewall_disabled",
                "bad_address",
                "bad_extension_order",
                "routing_header_0",
                "chain_too_long",
                "no_upper_layer",
                "incomplete_chain",
                "orphan_fragment",
                "fragment_overlap",
                "open_port",
                "global_port",
                "established",
                "out_of_scope",
                "port_closed",
                "icmp_allowed",
                "icmp_policy",
                "icmp_unrelated",
                "unsupported_protocol",
                "outbound",
            ]
        );
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
            assert_eq!(Reason::from_name(&r.to_string()), Some(*r));
        }
    }

    #[test]
    fn accept_reasons() {
        let accepts: Vec<Reason> = Reason::ALL
            .into_iter()
            .filter(|r| r.verdict() == Verdict::Accept)
            .collect();
        assert_eq!(
            accepts,
            [
                Reason::NotIpv6,
                Reason::FirewallDisabled,
                Reason::OpenPort,
                Reason::GlobalPort,
                Reason::Established,
                Reason::IcmpAllowed,
                Reason::Outbound
            ]
        );
    }
}
