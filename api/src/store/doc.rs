//! A change written into the admin's policy document, not over it.
//!
//! [`apply`] edits the parsed document ([`toml_edit`], as cargo edits
//! `Cargo.toml`) with what differs between the policy before the change
//! and after it, and with nothing else: the comments, the order, the
//! spelling of every key the change did not touch (`ssh`, `022/tcp`, a
//! range) and the layout stay as the admin wrote them. What the daemon
//! learns at run time (the interfaces' indexes and names, the connections
//! it adopts) is in both policies alike, so it never reaches the file.
//!
//! A pair map (`[globals]`, a connection's `open`) is edited by pairs: a key
//! that holds a changed pair is taken out and its unchanged pairs written
//! back; the pairs written are grouped into ranges (`6000:6007/tcp`) of
//! consecutive ports with the same name and scope, so a range opened as a
//! range is one key. A connection's `ignored` list is edited the same way.
//! Every other table (`[state]`, `[icmp]`, `[logging]`) is merged key by key.

use std::collections::{BTreeMap, BTreeSet};

use toml_edit::{Array, DocumentMut, InlineTable, Item, Table, TableLike, Value};
use v6fw_engine::policy::spec;
use v6fw_engine::{Connection, Opening, PortPair, PortRun};

use super::PolicyFile;
use crate::fw::FwError;

/// Edits `doc` (the file as it is on disk) to carry the change from
/// `before` to `after`. With `with_index`, a connection written anew keeps
/// its `if_index` (a whole file rendered for `v6fw replay`); a change
/// through the daemon never writes one.
pub(super) fn apply(
    doc: &mut DocumentMut,
    before: &PolicyFile,
    after: &PolicyFile,
    with_index: bool,
) -> Result<(), FwError> {
    let root = doc.as_table_mut();
    if before.policy.globals != after.policy.globals {
        let table = child_table(root, "globals", false)?;
        edit_pair_map(table, &before.policy.globals, &after.policy.globals)?;
    }
    edit_connections(root, before, after, with_index)?;
    let (old, new) = (rest(before)?, rest(after)?);
    merge(root, &old, &new)
}

/// The policy file's tables other than the pairs and connections, as TOML.
fn rest(file: &PolicyFile) -> Result<toml::Table, FwError> {
    let mut p = file.policy.clone();
    p.globals.clear();
    p.connections = Default::default();
    let mut t = toml::Table::try_from(&p).map_err(unexpected)?;
    t.remove("globals");
    t.remove("connections");
    let logging = toml::Value::try_from(&file.logging).map_err(unexpected)?;
    t.insert("logging".into(), logging);
    Ok(t)
}

fn unexpected(e: impl std::fmt::Display) -> FwError {
    FwError::Unexpected(format!(
        "the policy could not be written as TOML: {e}; please report this"
    ))
}

/// Merges the change from `old` to `new` into `doc`, key by key: equal
/// keys are left as they are, removed keys removed, changed values replaced
/// (tables merged the same way, so their comments stay).
fn merge(doc: &mut dyn TableLike, old: &toml::Table, new: &toml::Table) -> Result<(), FwError> {
    let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for key in keys {
        match (old.get(key), new.get(key)) {
            (Some(o), Some(n)) if o == n => {}
            (_, None) => {
                doc.remove(key);
            }
            (o, Some(toml::Value::Table(n))) => {
                let empty = toml::Table::new();
                let o = match o {
                    Some(toml::Value::Table(o)) => o,
                    _ => &empty,
                };
                let fits = doc.get(key).is_some_and(|i| i.as_table_like().is_some());
                if !fits {
                    doc.insert(key, Item::Table(Table::new()));
                }
                let Some(t) = doc.get_mut(key).and_then(Item::as_table_like_mut) else {
                    return Err(unexpected(format!("[{key}] is not a table")));
                };
                merge(t, o, n)?;
            }
            (_, Some(n)) => set_value(doc, key, to_edit_value(n)?),
        }
    }
    Ok(())
}

/// Sets `key` to `value`, keeping the key and the decor (comments) of a
/// value there.
fn set_value(doc: &mut dyn TableLike, key: &str, mut value: Value) {
    if let Some(old) = doc.get_mut(key).and_then(Item::as_value_mut) {
        *value.decor_mut() = old.decor().clone();
        *old = value;
        return;
    }
    doc.insert(key, Item::Value(value));
}

fn to_edit_value(v: &toml::Value) -> Result<Value, FwError> {
    use serde::Serialize;
    v.serialize(toml_edit::ser::ValueSerializer::new())
        .map_err(unexpected)
}

/// The table `key` of `parent`, created (implicit: no header of its own
/// when `implicit`) if it is missing.
fn child_table<'a>(
    parent: &'a mut dyn TableLike,
    key: &str,
    implicit: bool,
) -> Result<&'a mut dyn TableLike, FwError> {
    if parent.get(key).is_none_or(|i| i.is_none()) {
        let mut t = Table::new();
        t.set_implicit(implicit);
        parent.insert(key, Item::Table(t));
    }
    parent
        .get_mut(key)
        .and_then(Item::as_table_like_mut)
        .ok_or_else(|| {
            FwError::Fail(format!(
                "`{key}` in the policy file is not a table: make it one (see `v6fw check`)"
            ))
        })
}

/// The pairs that differ between two maps.
fn changed_pairs<V: PartialEq>(
    old: &BTreeMap<PortPair, V>,
    new: &BTreeMap<PortPair, V>,
) -> BTreeSet<PortPair> {
    let mut out: BTreeSet<PortPair> = old
        .iter()
        .filter(|(p, v)| new.get(p) != Some(v))
        .map(|(p, _)| *p)
        .collect();
    out.extend(new.keys().filter(|p| !old.contains_key(p)));
    out
}

/// The runs a key or list entry of the file names.
fn runs_of(text: &str) -> Result<Vec<PortRun>, FwError> {
    crate::fw::services::install();
    spec::parse_spec(text).map_err(|e| {
        FwError::Fail(format!(
            "the policy file has an entry {text:?} v6fw cannot read ({e}): fix it there (`v6fw check`), then `v6fw reload`"
        ))
    })
}

/// Whether any pair of `runs` is in `set`.
fn touches(runs: &[PortRun], set: &BTreeSet<PortPair>) -> bool {
    runs.iter().any(|r| {
        match (
            PortPair::new(r.first, r.protocol),
            PortPair::new(r.last, r.protocol),
        ) {
            (Ok(a), Ok(b)) => set.range(a..=b).next().is_some(),
            _ => false,
        }
    })
}

/// Edits a `PORT/PROTO = opening` table from `old` to `new`.
fn edit_pair_map(
    table: &mut dyn TableLike,
    old: &BTreeMap<PortPair, Opening>,
    new: &BTreeMap<PortPair, Opening>,
) -> Result<(), FwError> {
    let changed = changed_pairs(old, new);
    if changed.is_empty() {
        return Ok(());
    }
    let mut write: BTreeSet<PortPair> = changed
        .intersection(&new.keys().copied().collect())
        .copied()
        .collect();
    let mut taken = Vec::new();
    for (key, _) in table.iter() {
        let runs = runs_of(key)?;
        if touches(&runs, &changed) {
            taken.push(key.to_string());
            // The key's other pairs are unchanged: written back.
            write.extend(
                runs.into_iter()
                    .flat_map(PortRun::pairs)
                    .filter(|p| !changed.contains(p)),
            );
        }
    }
    for key in &taken {
        table.remove(key);
    }
    for (run, opening) in group(write.iter().filter_map(|p| new.get(p).map(|o| (*p, o)))) {
        table.insert(&run.to_string(), Item::Value(opening_value(opening)));
    }
    Ok(())
}

/// Groups sorted pairs into runs of consecutive ports of one protocol with
/// equal values.
fn group<'a, V: PartialEq + 'a>(
    pairs: impl Iterator<Item = (PortPair, &'a V)>,
) -> Vec<(PortRun, &'a V)> {
    let mut out: Vec<(PortRun, &V)> = Vec::new();
    for (p, v) in pairs {
        if let Some((run, last)) = out.last_mut() {
            let next = u32::from(run.last) + 1 == u32::from(p.port());
            if next && run.protocol == p.protocol() && *last == v {
                run.last = p.port();
                continue;
            }
        }
        let run = PortRun {
            protocol: p.protocol(),
            first: p.port(),
            last: p.port(),
        };
        out.push((run, v));
    }
    out
}

/// An opening as the file writes it: `"name"`, or `{ name = ..., from = [...] }`.
fn opening_value(o: &Opening) -> Value {
    if o.from.is_any() {
        return Value::from(o.name.as_str());
    }
    let mut t = InlineTable::new();
    t.insert("name", Value::from(o.name.as_str()));
    let from: Array = o.from.prefixes().iter().map(|p| p.to_string()).collect();
    t.insert("from", Value::Array(from));
    Value::InlineTable(t)
}

/// Edits a connection's `ignored = [...]` list from `old` to `new`.
fn edit_pair_set(
    conn: &mut dyn TableLike,
    old: &BTreeSet<PortPair>,
    new: &BTreeSet<PortPair>,
) -> Result<(), FwError> {
    let changed: BTreeSet<PortPair> = old.symmetric_difference(new).copied().collect();
    if changed.is_empty() {
        return Ok(());
    }
    if conn.get("ignored").is_none() {
        conn.insert("ignored", Item::Value(Value::Array(Array::new())));
    }
    let Some(list) = conn.get_mut("ignored").and_then(Item::as_array_mut) else {
        return Err(FwError::Fail(
            "a connection's `ignored` in the policy file is not a list: fix it there (`v6fw check`)".into(),
        ));
    };
    let mut write: BTreeSet<PortPair> = changed.intersection(new).copied().collect();
    let mut keep = Vec::new();
    for v in list.iter() {
        let text = v.as_str().unwrap_or_default();
        let runs = runs_of(text)?;
        let hit = touches(&runs, &changed);
        if hit {
            write.extend(
                runs.into_iter()
                    .flat_map(PortRun::pairs)
                    .filter(|p| !changed.contains(p)),
            );
        }
        keep.push(!hit);
    }
    let mut i = 0;
    list.retain(|_| {
        let k = keep.get(i).copied().unwrap_or(true);
        i += 1;
        k
    });
    for (run, ()) in group(write.iter().map(|p| (*p, &()))) {
        list.push(run.to_string());
    }
    Ok(())
}

/// Edits `[connections.ID]` for every connection the change touched: its
/// switch, its own pairs, its ignored globals. A connection the daemon
/// adopted from an interface is written (id and name, never the index) only
/// once a change gives it something of its own.
fn edit_connections(
    root: &mut Table,
    before: &PolicyFile,
    after: &PolicyFile,
    with_index: bool,
) -> Result<(), FwError> {
    let (old, new) = (&before.policy.connections, &after.policy.connections);
    let ids: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for id in ids {
        let (o, n) = (old.get(id), new.get(id));
        if o == n || o.zip(n).is_some_and(|(o, n)| same_rules(o, n)) {
            continue;
        }
        let conns = child_table(root, "connections", true)?;
        let Some(n) = n else {
            conns.remove(id);
            continue;
        };
        let fresh = Connection::new(n.id.as_str(), n.name.as_str(), 0);
        let o = o.unwrap_or(&fresh);
        if conns.get(id).is_none() {
            let mut t = Table::new();
            t.insert("id", toml_edit::value(n.id.as_str()));
            if !n.name.is_empty() && n.name != n.id {
                t.insert("name", toml_edit::value(n.name.as_str()));
            }
            if with_index && n.if_index != 0 {
                t.insert("if_index", toml_edit::value(i64::from(n.if_index)));
            }
            conns.insert(id, Item::Table(t));
        }
        let conn = child_table(conns, id, false)?;
        if o.enabled != n.enabled || conn.get("enabled").is_none() && !n.enabled {
            set_value(conn, "enabled", Value::from(n.enabled));
        }
        if o.open != n.open {
            edit_pair_map(child_table(conn, "open", false)?, &o.open, &n.open)?;
        }
        edit_pair_set(conn, &o.ignored, &n.ignored)?;
    }
    Ok(())
}

/// Whether two versions of a connection have the same rules (the index and
/// name are the interface's, learned at run time).
fn same_rules(a: &Connection, b: &Connection) -> bool {
    a.enabled == b.enabled && a.open == b.open && a.ignored == b.ignored
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn edit(text: &str, change: impl FnOnce(&mut PolicyFile)) -> String {
        let before = super::super::parse(Path::new("/x/policy.toml"), text).unwrap();
        let mut after = before.clone();
        change(&mut after);
        let mut doc: DocumentMut = text.parse().unwrap();
        apply(&mut doc, &before, &after, false).unwrap();
        let out = doc.to_string();
        // What was written reads back as the policy after the change.
        assert_eq!(
            super::super::parse(Path::new("/x/policy.toml"), &out).unwrap(),
            after,
            "{out}"
        );
        out
    }

    fn pair(s: &str) -> PortPair {
        s.parse().unwrap()
    }

    #[test]
    fn comments_order_and_spellings_stay() {
        let text =
            "# mine\n[globals]\n# the web\n\"http\" = \"web\" # port 80\n\"022/tcp\" = \"ssh\"\n";
        let out = edit(text, |f| {
            f.policy.open_global(pair("9000/tcp"), "x");
        });
        assert!(out.starts_with("# mine\n[globals]\n# the web\n\"http\" = \"web\" # port 80\n\"022/tcp\" = \"ssh\"\n"), "{out}");
        assert!(out.contains("\"9000/tcp\" = \"x\""), "{out}");
    }

    #[test]
    fn ranges_are_written_as_ranges_and_split_when_one_pair_closes() {
        let out = edit("# all\n", |f| {
            for p in 1..=65535 {
                f.policy
                    .open_global(PortPair::new(p, v6fw_engine::Protocol::Udp).unwrap(), "all");
            }
        });
        assert!(out.len() < 100, "{out}");
        assert!(out.contains("\"1:65535/udp\" = \"all\""), "{out}");
        let out = edit(&out, |f| {
            f.policy.close_global(pair("53/udp"));
        });
        assert!(
            out.contains("\"1:52/udp\" = \"all\"") && out.contains("\"54:65535/udp\" = \"all\""),
            "{out}"
        );
    }

    #[test]
    fn runtime_connections_stay_out_and_a_changed_one_goes_in_without_index() {
        let text = "[globals]\n";
        let before = super::super::parse(Path::new("/x/policy.toml"), text).unwrap();
        let mut running = before.clone();
        running
            .policy
            .add_connection(Connection::new("eth0", "eth0", 7))
            .unwrap();
        let mut after = running.clone();
        after
            .policy
            .connections
            .get_mut("eth0")
            .unwrap()
            .open_port(pair("80/tcp"), "web");
        let mut doc: DocumentMut = text.parse().unwrap();
        // A change elsewhere while eth0 is adopted (in memory).
        let mut other = running.clone();
        other.policy.open_global(pair("1/tcp"), "one");
        apply(&mut doc, &running, &other, false).unwrap();
        assert_eq!(
            doc.to_string(),
            "[globals]\n\"1/tcp\" = \"one\"\n",
            "an adopted interface is not written"
        );
        let mut doc: DocumentMut = text.parse().unwrap();
        apply(&mut doc, &running, &after, false).unwrap();
        let out = doc.to_string();
        assert!(out.contains("[connections.eth0]\nid = \"eth0\"\n"), "{out}");
        assert!(out.contains("\"80/tcp\" = \"web\""), "{out}");
        assert!(!out.contains("if_index"), "{out}");
    }

    #[test]
    fn state_and_logging_are_merged_in_place() {
        let text = "state = true # tracked\n[logging]\n# keep\ndropped = false\n";
        let out = edit(text, |f| {
            f.policy.state.enabled = false;
            f.logging.dropped = true;
        });
        assert!(out.contains("state = false # tracked"), "{out}");
        assert!(out.contains("# keep\ndropped = true"), "{out}");
    }
}
