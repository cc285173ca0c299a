//! The inbound ICMPv6 policy: one rule per message type, RFC 4890 §4.4 by
//! default (SPEC.md, step 6), with the hop-limit and fragment conditions of
//! neighbour discovery and MLD.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::unique;

/// What the inbound ICMPv6 policy does with one message type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IcmpRule {
    /// `accept icmp_allowed`.
    Allow,
    /// `drop icmp_policy`.
    Deny,
    /// Allowed only with hop limit 255 (neighbour discovery, RFC 4861).
    AllowIfHopLimit255,
}

/// The inbound ICMPv6 policy, one [`IcmpRule`] per message type.
///
/// The default follows RFC 4890 §4.4 as SPEC.md lists it. Serialized as the
/// types whose rule differs from the default.
#[derive(Clone, PartialEq, Eq)]
pub struct IcmpPolicy {
    rules: [IcmpRule; 256],
}

impl IcmpPolicy {
    /// SPEC.md's default rule for one type.
    pub const fn default_rule(icmp_type: u8) -> IcmpRule {
        match icmp_type {
            1..=4 | 128..=132 | 141 | 142 | 143 | 148 | 149 | 151..=153 => IcmpRule::Allow,
            133..=136 => IcmpRule::AllowIfHopLimit255,
            _ => IcmpRule::Deny,
        }
    }

    /// The rule for one type.
    #[allow(clippy::indexing_slicing)] // 256 rules, indexed by a u8: in bounds
    pub fn rule(&self, icmp_type: u8) -> IcmpRule {
        self.rules[usize::from(icmp_type)]
    }

    /// Sets the rule for one type.
    #[allow(clippy::indexing_slicing)] // 256 rules, indexed by a u8: in bounds
    pub fn set(&mut self, icmp_type: u8, rule: IcmpRule) {
        self.rules[usize::from(icmp_type)] = rule;
    }

    /// Whether a message of this type, with this hop limit, in a packet with
    /// (`fragmented`) or without a fragment header, is allowed. Whatever the
    /// type's rule, neighbour discovery (133-136) needs hop limit 255 (RFC
    /// 4861) and no fragment header, atomic fragments included (RFC 6980),
    /// and MLD (130-132, 143) needs hop limit 1 (RFC 2710, RFC 3810).
    #[inline]
    #[allow(clippy::indexing_slicing)] // 256 rules, indexed by a u8: in bounds
    pub fn allows(&self, icmp_type: u8, hop_limit: u8, fragmented: bool) -> bool {
        let by_rule = match self.rules[usize::from(icmp_type)] {
            IcmpRule::Allow => true,
            IcmpRule::Deny => false,
            IcmpRule::AllowIfHopLimit255 => hop_limit == 255,
        };
        by_rule
            && match icmp_type {
                133..=136 => hop_limit == 255 && !fragmented,
                130..=132 | 143 => hop_limit == 1,
                _ => true,
            }
    }

    /// The types whose rule differs from the default.
    pub fn overrides(&self) -> BTreeMap<u8, IcmpRule> {
        (0..=255u8)
            .filter(|&t| self.rule(t) != Self::default_rule(t))
            .map(|t| (t, self.rule(t)))
            .collect()
    }
}

impl Default for IcmpPolicy {
    fn default() -> Self {
        let mut rules = [IcmpRule::Deny; 256];
        for (t, r) in (0..=255u8).zip(rules.iter_mut()) {
            *r = Self::default_rule(t);
        }
        IcmpPolicy { rules }
    }
}

impl fmt::Debug for IcmpPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IcmpPolicy")
            .field("overrides", &self.overrides())
            .finish()
    }
}

impl Serialize for IcmpPolicy {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let map: BTreeMap<String, IcmpRule> = self
            .overrides()
            .into_iter()
            .map(|(t, r)| (t.to_string(), r))
            .collect();
        map.serialize(s)
    }
}

impl<'de> Deserialize<'de> for IcmpPolicy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<String, IcmpRule>::deserialize(d)?;
        let mut policy = IcmpPolicy::default();
        let mut seen: BTreeMap<u8, String> = BTreeMap::new();
        for (text, r) in map {
            let t: u8 = text.trim().parse().map_err(|_| {
                serde::de::Error::custom(format!(
                    "ICMPv6 type {text:?} is not valid: types are 0-255"
                ))
            })?;
            if let Some(first) = seen.insert(t, text.clone()) {
                return Err(serde::de::Error::custom(unique::twice(&first, &text, t)));
            }
            policy.set(t, r);
        }
        Ok(policy)
    }
}
