//! Deserializers that refuse one pair (or ICMPv6 type) written twice in two
//! spellings (`22/tcp`, `022/tcp`, `22/TCP`, `ssh`, a range holding it): a
//! plain map would keep the last one silently. The error names both
//! spellings. Keys are read as admins write them: `22/tcp`, `6000:6007/tcp`,
//! `ssh`, `ssh/tcp` (see [`super::spec`]); a range or a name opens each pair.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::marker::PhantomData;

use serde::de::{DeserializeSeed, Deserializer, Error, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::{Opening, PortPair};

/// The message for `what` written as both `first` and `second`.
pub(super) fn twice(first: &str, second: &str, what: impl fmt::Display) -> String {
    format!("{first:?} and {second:?} are the same entry ({what}) written twice: keep one of them")
}

/// Remembers the spelling each pair was first written with. As a
/// [`DeserializeSeed`], it reads one spelling and refuses a repeat while
/// that key or element is being read, so the error points at it.
struct Seen(BTreeMap<PortPair, String>);

impl<'de> DeserializeSeed<'de> for &mut Seen {
    type Value = Vec<PortPair>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<PortPair>, D::Error> {
        let text = String::deserialize(d)?;
        let pairs = super::spec::parse_pairs(&text).map_err(D::Error::custom)?;
        for &pair in &pairs {
            if let Some(first) = self.0.insert(pair, text.clone()) {
                return Err(D::Error::custom(twice(&first, &text, pair)));
            }
        }
        Ok(pairs)
    }
}

struct PairMap(PhantomData<()>);

impl<'de> Visitor<'de> for PairMap {
    type Value = BTreeMap<PortPair, Opening>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "a table of PORT/PROTO = \"name\" entries, e.g. \"22/tcp\" = \"ssh\" or \"22/tcp\" = { name = \"ssh\", from = [\"fd00::/8\"] }",
        )
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut seen = Seen(BTreeMap::new());
        let mut out = BTreeMap::new();
        while let Some(pairs) = access.next_key_seed(&mut seen)? {
            let entry = access.next_value::<Opening>()?;
            for pair in pairs {
                out.insert(pair, entry.clone());
            }
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
        while let Some(pairs) = access.next_element_seed(&mut seen)? {
            out.extend(pairs);
        }
        Ok(out)
    }
}

/// A `PORT/PROTO = "name"` table with no pair twice.
pub(super) fn pair_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<PortPair, Opening>, D::Error> {
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
        assert_eq!(
            err("[globals]\n\"22/tcp\" = \"a\"\n\"022/TCP\" = \"b\"\n"),
            "\"22/tcp\" and \"022/TCP\" are the same entry (22/tcp) written twice: keep one of them"
        );
        assert!(err("[icmp]\n\"1\" = \"deny\"\n\"01\" = \"deny\"\n").contains("written twice"));
        let set = "[connections.e]\nid = \"e\"\nignored = [\"1/udp\", \"1/17\"]\n";
        assert!(err(set).contains("written twice"));
        assert!(err("[globals]\n\"ssh\" = \"a\"\n\"20:30/tcp\" = \"b\"\n")
            .starts_with("\"ssh\" and \"20:30/tcp\" are the same entry (22/tcp)"));
        assert!(err("[globals]\n\"8:7/tcp\" = \"a\"\n").contains("backwards"));
        assert!(err("[globals]\n\"nosuch\" = \"a\"\n").contains("no service"));
        let ranged = "[globals]\n\"6000:6002/tcp\" = { name = \"x\", from = [\"fd00::/8\"] }\n";
        let p = toml::from_str::<Policy>(ranged).unwrap();
        assert_eq!(p.globals.len(), 3);
        assert!(p
            .globals
            .values()
            .all(|o| o.name == "x" && !o.from.is_any()));
        let ok = "[connections.e]\nid = \"e\"\nignored = [\"1/udp\", \"1/tcp\"]\n";
        assert_eq!(
            toml::from_str::<Policy>(ok).unwrap().connections["e"]
                .ignored
                .len(),
            2
        );
    }

    #[test]
    fn the_daemons_logging_table_is_accepted_unread_and_never_written() {
        // The api crate reads and checks `[logging]`; the engine lets any
        // content through and still refuses every other unknown key.
        let text = "[logging]\nanything = 1\n[logging.deeper]\nx = \"y\"\n";
        let p = toml::from_str::<Policy>(text).unwrap();
        assert_eq!(p, Policy::default());
        assert!(toml::from_str::<Policy>("logging = 5\n").is_ok());
        let rendered = toml::to_string(&p).unwrap();
        assert!(!rendered.contains("logging"), "{rendered}");
        let e = toml::from_str::<Policy>("[logging]\n[loging]\n").unwrap_err();
        assert!(e.message().contains("unknown field `loging`"), "{e}");
        assert!(e.message().contains("`logging`"), "{e}");
    }
}
