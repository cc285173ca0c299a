//! Deserializers that refuse one pair (or ICMPv6 type) written twice in two
//! spellings (`22/tcp`, `022/tcp`, `22/TCP`): a plain map would keep the last
//! one silently. The error names both spellings.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::marker::PhantomData;

use serde::de::{DeserializeSeed, Deserializer, Error, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::PortPair;

/// The message for `what` written as both `first` and `second`.
pub(super) fn twice(first: &str, second: &str, what: impl fmt::Display) -> String {
    format!("{first:?} and {second:?} are the same entry ({what}) written twice: keep one of them")
}

/// Remembers the spelling each pair was first written with. As a
/// [`DeserializeSeed`], it reads one spelling and refuses a repeat while
/// that key or element is being read, so the error points at it.
struct Seen(BTreeMap<PortPair, String>);

impl<'de> DeserializeSeed<'de> for &mut Seen {
    type Value = PortPair;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<PortPair, D::Error> {
        let text = String::deserialize(d)?;
        let pair: PortPair = text.parse().map_err(D::Error::custom)?;
        if let Some(first) = self.0.insert(pair, text.clone()) {
            return Err(D::Error::custom(twice(&first, &text, pair)));
        }
        Ok(pair)
    }
}

struct PairMap(PhantomData<()>);

impl<'de> Visitor<'de> for PairMap {
    type Value = BTreeMap<PortPair, String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a table of PORT/PROTO = \"name\" entries, e.g. \"22/tcp\" = \"ssh\"")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut seen = Seen(BTreeMap::new());
        let mut out = BTreeMap::new();
        while let Some(pair) = access.next_key_seed(&mut seen)? {
            out.insert(pair, access.next_value::<String>()?);
        }
        Ok(out)
    }
}

struct PairSet(PhantomData<()>);

impl<'de> Visitor<'de> for PairSet {
    type Value = BTreeSet<PortPair>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of PORT/PROTO entries, e.g. [\"22/tcp\", \"53/udp\"]")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut seen = Seen(BTreeMap::new());
        let mut out = BTreeSet::new();
        while let Some(pair) = access.next_element_seed(&mut seen)? {
            out.insert(pair);
        }
        Ok(out)
    }
}

/// A `PORT/PROTO = "name"` table with no pair twice.
pub(super) fn pair_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<PortPair, String>, D::Error> {
    d.deserialize_map(PairMap(PhantomData))
}

/// A `["PORT/PROTO", ...]` list with no pair twice.
pub(super) fn pair_set<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeSet<PortPair>, D::Error> {
    d.deserialize_seq(PairSet(PhantomData))
}

#[cfg(test)]
mod tests {
    use crate::policy::Policy;

    #[test]
    fn strict_reading_refuses_typos_and_repeats() {
        let err = |t: &str| {
            toml::from_str::<Policy>(t)
                .unwrap_err()
                .message()
                .to_string()
        };
        assert!(err("stat = true\n").contains("unknown field `stat`, expected one of"));
        assert!(err("[logging]\nmaxsize = 1\n").contains("`max_size`"));
        assert_eq!(
            err("[globals]\n\"22/tcp\" = \"a\"\n\"022/TCP\" = \"b\"\n"),
            "\"22/tcp\" and \"022/TCP\" are the same entry (22/tcp) written twice: keep one of them"
        );
        assert!(err("[icmp]\n\"1\" = \"deny\"\n\"01\" = \"deny\"\n").contains("written twice"));
        let set = "[connections.e]\nid = \"e\"\nignored = [\"1/udp\", \"1/17\"]\n";
        assert!(err(set).contains("written twice"));
        let ok = "[connections.e]\nid = \"e\"\nignored = [\"1/udp\", \"1/tcp\"]\n";
        assert_eq!(
            toml::from_str::<Policy>(ok).unwrap().connections["e"]
                .ignored
                .len(),
            2
        );
    }
}
