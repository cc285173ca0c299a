//! [`Connections`]: a policy's connections by id, shared between versions.
//!
//! Every publish edits a copy of the [`Policy`](super::Policy) and compares
//! it with the one before. A container host has hundreds of connections, so
//! that copy and that comparison must not touch each of them: the map sits
//! behind an `Arc` (copying a policy copies a pointer) and each connection
//! behind another (a changed connection copies the map's pointers, not the
//! other connections). Equality checks pointers first (std's `Arc<T: Eq>`),
//! so comparing two versions costs what differs between them. Reads look
//! like a `BTreeMap<String, Connection>`'s; writes copy on write.

use std::collections::{btree_map, BTreeMap};
use std::fmt;
use std::ops::Index;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Connection;

/// The connections of a policy by id, in id order. Cloning is O(1); changing
/// one connection copies the map's pointers and that connection alone.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Connections(Arc<BTreeMap<String, Arc<Connection>>>);

impl Connections {
    /// How many connections there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a connection has this id.
    pub fn contains_key(&self, id: &str) -> bool {
        self.0.contains_key(id)
    }

    /// The connection with this id.
    pub fn get(&self, id: &str) -> Option<&Connection> {
        self.0.get(id).map(|c| &**c)
    }

    /// The ids, in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &String> + ExactSizeIterator {
        self.0.keys()
    }

    /// The connections, in id order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &Connection> + ExactSizeIterator {
        self.0.values().map(|c| &**c)
    }

    /// The connections with their ids, in id order.
    pub fn iter(&self) -> Iter<'_> {
        Iter(self.0.iter())
    }

    /// Whether `other` is this very map (a copy that no change touched
    /// since): a pointer comparison, whatever the number of connections.
    pub(crate) fn same_as(&self, other: &Connections) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// The connections as shared, for builders that reuse what an unchanged
    /// connection (the same `Arc`) had.
    pub(crate) fn shared(&self) -> impl Iterator<Item = (&String, &Arc<Connection>)> {
        self.0.iter()
    }

    /// Inserts `conn` under `id`, returning the connection it replaced.
    pub fn insert(&mut self, id: String, conn: Connection) -> Option<Connection> {
        Arc::make_mut(&mut self.0)
            .insert(id, Arc::new(conn))
            .map(Arc::unwrap_or_clone)
    }

    /// The connection with this id, to change (copied first if shared).
    pub fn get_mut(&mut self, id: &str) -> Option<&mut Connection> {
        // Look first, so asking for an unknown id copies nothing.
        if !self.0.contains_key(id) {
            return None;
        }
        Arc::make_mut(&mut self.0).get_mut(id).map(Arc::make_mut)
    }

    /// Every connection, to change: copies every shared one, so prefer
    /// [`Connections::get_mut`] for the ones that do change.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Connection> {
        Arc::make_mut(&mut self.0).values_mut().map(Arc::make_mut)
    }
}

impl Index<&str> for Connections {
    type Output = Connection;

    /// The connection with this id; panics if there is none, like a map's
    /// index (for tests and callers that just checked).
    fn index(&self, id: &str) -> &Connection {
        #[allow(clippy::indexing_slicing)] // the documented contract of Index
        &self.0[id]
    }
}

impl<'a> IntoIterator for &'a Connections {
    type Item = (&'a String, &'a Connection);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// The connections of a [`Connections`] with their ids, in id order.
pub struct Iter<'a>(btree_map::Iter<'a, String, Arc<Connection>>);

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a String, &'a Connection);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, c)| (k, &**c))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|(k, c)| (k, &**c))
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl FromIterator<(String, Connection)> for Connections {
    fn from_iter<I: IntoIterator<Item = (String, Connection)>>(iter: I) -> Self {
        Connections(Arc::new(
            iter.into_iter().map(|(k, c)| (k, Arc::new(c))).collect(),
        ))
    }
}

impl fmt::Debug for Connections {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Written as the map of id → connection it is (as a `BTreeMap` would be).
impl Serialize for Connections {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Connections {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(BTreeMap::<String, Connection>::deserialize(d)?
            .into_iter()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three() -> Connections {
        (0..3u32)
            .map(|i| {
                (
                    format!("veth{i}"),
                    Connection::new(format!("veth{i}"), "veth", i),
                )
            })
            .collect()
    }

    #[test]
    fn a_copy_shares_until_one_connection_changes() {
        let a = three();
        let mut b = a.clone();
        assert!(Arc::ptr_eq(&a.0, &b.0), "a copy is a pointer");
        assert_eq!(a, b);
        assert!(b.get_mut("nope").is_none());
        assert!(Arc::ptr_eq(&a.0, &b.0), "an unknown id copies nothing");
        if let Some(c) = b.get_mut("veth1") {
            c.enabled = false;
        }
        assert_ne!(a, b);
        assert!(a["veth1"].enabled && !b["veth1"].enabled);
        let shared: Vec<bool> = a
            .shared()
            .zip(b.shared())
            .map(|((_, x), (_, y))| Arc::ptr_eq(x, y))
            .collect();
        assert_eq!(shared, [true, false, true], "only the changed one copied");
    }

    #[test]
    fn written_and_read_as_a_plain_map() {
        let conns = three();
        let plain: BTreeMap<String, Connection> =
            conns.iter().map(|(k, c)| (k.clone(), c.clone())).collect();
        let text = toml::to_string(&conns).unwrap();
        assert_eq!(text, toml::to_string(&plain).unwrap());
        assert_eq!(format!("{conns:?}"), format!("{plain:?}"));
        let back: Connections = toml::from_str(&text).unwrap();
        assert_eq!(back, conns);
        assert_eq!(
            back.values().map(|c| c.if_index).collect::<Vec<_>>(),
            [0, 1, 2]
        );
    }
}
