//! Reading what the offload rules of [`crate::rules`] let through: the
//! packet and byte counters of the rules marked `v6fw-offload` in v6fw's
//! chains (`ip6tables -t mangle -L CHAIN -v -x -n`). This spawns ip6tables, so it is
//! for a periodic read or a one-off (`v6fw stats`, the totals at exit),
//! never the packet path.

use crate::rules::{ip6tables_output, RuleError, CHAIN_IN, CHAIN_OUT, OFFLOAD_COMMENT, TABLE};

/// What the kernel accepted for v6fw without queueing it: packets of TCP
/// and UDP flows conntrack tracked as ESTABLISHED.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Offloaded {
    /// Inbound packets (chain V6FW-IN).
    pub in_packets: u64,
    /// Inbound bytes.
    pub in_bytes: u64,
    /// Outbound packets (chain V6FW-OUT).
    pub out_packets: u64,
    /// Outbound bytes.
    pub out_bytes: u64,
}

impl Offloaded {
    /// Packets both ways.
    pub fn packets(&self) -> u64 {
        self.in_packets.saturating_add(self.out_packets)
    }

    /// Bytes both ways.
    pub fn bytes(&self) -> u64 {
        self.in_bytes.saturating_add(self.out_bytes)
    }
}

/// Reads the offload rules' counters in this network namespace. `Ok(None)`:
/// v6fw's chains hold no offload rule (offload is off, or v6fw is not
/// running here).
pub fn read() -> Result<Option<Offloaded>, RuleError> {
    let mut found = false;
    let mut o = Offloaded::default();
    for (chain, packets, bytes) in [
        (CHAIN_IN, &mut o.in_packets, &mut o.in_bytes),
        (CHAIN_OUT, &mut o.out_packets, &mut o.out_bytes),
    ] {
        let args: Vec<String> = ["-t", TABLE, "-L", chain, "-v", "-x", "-n"]
            .iter()
            .map(|a| a.to_string())
            .collect();
        let text = match ip6tables_output(&args) {
            Ok(t) => t,
            // No such chain: v6fw's rules are not installed here.
            Err(e) if e.is_absent() => continue,
            Err(e) => return Err(e),
        };
        if let Some((p, b)) = parse(&text) {
            found = true;
            *packets = p;
            *bytes = b;
        }
    }
    Ok(found.then_some(o))
}

/// The packet and byte counters of the offload rules (one per protocol) in
/// one chain's `ip6tables -L CHAIN -v -x -n` listing, summed; `None`
/// without one.
pub fn parse(listing: &str) -> Option<(u64, u64)> {
    let marker = format!("/* {OFFLOAD_COMMENT} */");
    let mut sum: Option<(u64, u64)> = None;
    for line in listing.lines().filter(|l| l.contains(&marker)) {
        let mut fields = line.split_whitespace();
        let packets = fields.next().and_then(|f| f.parse::<u64>().ok());
        let bytes = fields.next().and_then(|f| f.parse::<u64>().ok());
        if let (Some(p), Some(b)) = (packets, bytes) {
            let (sp, sb) = sum.unwrap_or_default();
            sum = Some((sp.saturating_add(p), sb.saturating_add(b)));
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_offload_rule_and_nothing_else() {
        // As ip6tables 1.8.9 (nf_tables) prints it.
        let listing = "Chain V6FW-IN (1 references)
    pkts      bytes target     prot opt in     out     source               destination
   12000  1200000 RETURN     6    --  *      *       ::/0                 ::/0                 ctstate ESTABLISHED /* v6fw-offload */
     345    34567 RETURN     17   --  *      *       ::/0                 ::/0                 ctstate ESTABLISHED /* v6fw-offload */
     900    81000 RETURN     0    --  *      *       ::/0                 ::/0                 mark match 0x200000/0x200000
       0        0 RETURN     0    --  lo     *       ::/0                 ::/0
      77     6160 NFQUEUE    0    --  *      *       ::/0                 ::/0                 NFQUEUE num 0
";
        assert_eq!(parse(listing), Some((12345, 1_234_567)));
        let without = "Chain V6FW-IN (1 references)
    pkts      bytes target     prot opt in     out     source               destination
      77     6160 NFQUEUE    0    --  *      *       ::/0                 ::/0                 NFQUEUE num 0
";
        assert_eq!(parse(without), None);
        let o = Offloaded {
            in_packets: 3,
            in_bytes: 30,
            out_packets: 4,
            out_bytes: 40,
        };
        assert_eq!((o.packets(), o.bytes()), (7, 70));
    }
}
