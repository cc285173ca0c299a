//! The policy file's `[state]` table: the flow-state switch, the state
//! tables' sizes and every idle timeout, validated when read.
//!
//! ```toml
//! [state]
//! enabled = true
//! flow_slots = 65536
//! tcp_confirmed_s = 432000
//! ```
//!
//! `state = true` / `state = false` (the older form) still reads: the switch
//! with every size and timeout at its default. A policy whose sizes and
//! timeouts are all the defaults is written in that form too.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest idle timeout accepted: one year, in seconds.
pub const MAX_TIMEOUT_S: u32 = 365 * 24 * 3_600;
/// The longest fragment memory accepted: one hour (RFC 8200 reassembles for 60 s).
pub const MAX_FRAGMENT_S: u32 = 3_600;
/// The most flow slots accepted per worker (4,194,304; about 230 MB).
pub const MAX_FLOW_SLOTS: u32 = 1 << 22;
/// The most fragment slots accepted per worker.
pub const MAX_FRAGMENT_SLOTS: u32 = 1 << 20;
/// The fewest slots a table may have (one probe window).
pub const MIN_SLOTS: u32 = 8;

/// Flow state settings (the `[state]` table). Sizes are per worker; times are
/// seconds (SPEC.md's defaults, after Linux conntrack).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StateSettings {
    /// Whether outbound flows are tracked so their replies are `established`.
    pub enabled: bool,
    /// Flow table slots per worker (rounded up to a power of two).
    pub flow_slots: u32,
    /// Fragment memory slots per worker (rounded up to a power of two).
    pub fragment_slots: u32,
    /// TCP flow before it is confirmed.
    pub tcp_unconfirmed_s: u32,
    /// TCP flow once confirmed.
    pub tcp_confirmed_s: u32,
    /// TCP flow once a FIN was seen in both directions.
    pub tcp_closed_s: u32,
    /// TCP flow after a RST in either direction.
    pub tcp_reset_s: u32,
    /// UDP flow before a reply was accepted.
    pub udp_unconfirmed_s: u32,
    /// UDP flow once a reply was accepted.
    pub udp_confirmed_s: u32,
    /// How long a first fragment's verdict is remembered.
    pub fragment_s: u32,
}

impl Default for StateSettings {
    fn default() -> Self {
        StateSettings {
            enabled: true,
            flow_slots: 1 << 16,
            fragment_slots: 1 << 12,
            tcp_unconfirmed_s: 120,
            tcp_confirmed_s: 432_000,
            tcp_closed_s: 120,
            tcp_reset_s: 10,
            udp_unconfirmed_s: 30,
            udp_confirmed_s: 120,
            fragment_s: 60,
        }
    }
}

impl StateSettings {
    /// Every size and timeout with its key and accepted range.
    fn limits(&self) -> [(&'static str, u32, u32, u32); 9] {
        [
            ("flow_slots", self.flow_slots, MIN_SLOTS, MAX_FLOW_SLOTS),
            (
                "fragment_slots",
                self.fragment_slots,
                MIN_SLOTS,
                MAX_FRAGMENT_SLOTS,
            ),
            (
                "tcp_unconfirmed_s",
                self.tcp_unconfirmed_s,
                1,
                MAX_TIMEOUT_S,
            ),
            ("tcp_confirmed_s", self.tcp_confirmed_s, 1, MAX_TIMEOUT_S),
            ("tcp_closed_s", self.tcp_closed_s, 1, MAX_TIMEOUT_S),
            ("tcp_reset_s", self.tcp_reset_s, 1, MAX_TIMEOUT_S),
            (
                "udp_unconfirmed_s",
                self.udp_unconfirmed_s,
                1,
                MAX_TIMEOUT_S,
            ),
            ("udp_confirmed_s", self.udp_confirmed_s, 1, MAX_TIMEOUT_S),
            ("fragment_s", self.fragment_s, 1, MAX_FRAGMENT_S),
        ]
    }

    /// Checks every size and timeout; the error names the key and its range.
    pub fn validate(&self) -> Result<(), String> {
        for (key, value, min, max) in self.limits() {
            if !(min..=max).contains(&value) {
                return Err(format!(
                    "state.{key} = {value} is not valid: use {min} to {max}"
                ));
            }
        }
        Ok(())
    }

    /// Whether only the switch differs from the defaults.
    fn is_switch_only(&self) -> bool {
        StateSettings {
            enabled: self.enabled,
            ..StateSettings::default()
        } == *self
    }
}

/// Serializes as `state = BOOL` when only the switch is set, else as the table.
pub(crate) fn serialize<S: Serializer>(v: &StateSettings, s: S) -> Result<S::Ok, S::Error> {
    if v.is_switch_only() {
        s.serialize_bool(v.enabled)
    } else {
        v.serialize(s)
    }
}

/// Reads `state = BOOL` or the `[state]` table, validated.
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<StateSettings, D::Error> {
    struct Either;
    impl<'de> Visitor<'de> for Either {
        type Value = StateSettings;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("true, false or a [state] table")
        }

        fn visit_bool<E: de::Error>(self, enabled: bool) -> Result<StateSettings, E> {
            Ok(StateSettings {
                enabled,
                ..StateSettings::default()
            })
        }

        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<StateSettings, A::Error> {
            let v = StateSettings::deserialize(de::value::MapAccessDeserializer::new(map))?;
            v.validate().map_err(de::Error::custom)?;
            Ok(v)
        }
    }
    d.deserialize_any(Either)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct File {
        #[serde(
            default,
            serialize_with = "serialize",
            deserialize_with = "deserialize"
        )]
        state: StateSettings,
    }

    fn read(text: &str) -> Result<StateSettings, String> {
        toml::from_str::<File>(text)
            .map(|f| f.state)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn bool_and_table_forms() {
        assert!(!read("state = false").unwrap().enabled);
        assert_eq!(read("state = true").unwrap(), StateSettings::default());
        let s = read("[state]\ntcp_confirmed_s = 600\nflow_slots = 1024\n").unwrap();
        assert_eq!(
            (s.tcp_confirmed_s, s.flow_slots, s.enabled),
            (600, 1024, true)
        );
        assert_eq!(s.udp_unconfirmed_s, 30, "others keep their defaults");
    }

    #[test]
    fn written_as_bool_when_only_the_switch_is_set() {
        let f = File {
            state: StateSettings {
                enabled: false,
                ..StateSettings::default()
            },
        };
        assert_eq!(toml::to_string(&f).unwrap().trim(), "state = false");
        let f = File {
            state: StateSettings {
                tcp_reset_s: 5,
                ..StateSettings::default()
            },
        };
        let text = toml::to_string(&f).unwrap();
        assert!(text.contains("tcp_reset_s = 5"), "{text}");
        assert_eq!(read(&text).unwrap(), f.state);
    }

    #[test]
    fn zero_absurd_and_unknown_values_name_the_key() {
        for (text, key) in [
            ("[state]\ntcp_confirmed_s = 0", "state.tcp_confirmed_s = 0"),
            (
                "[state]\nudp_unconfirmed_s = 40000000",
                "state.udp_unconfirmed_s",
            ),
            ("[state]\nflow_slots = 4", "state.flow_slots = 4"),
            ("[state]\nfragment_slots = 0", "state.fragment_slots"),
            ("[state]\nfragment_s = 7200", "state.fragment_s"),
            ("[state]\ntcp_idle_s = 10", "tcp_idle_s"),
            ("[state]\ntcp_reset_s = -1", "tcp_reset_s"),
        ] {
            let e = read(text).unwrap_err();
            assert!(e.contains(key), "{text}: {e}");
        }
    }
}
