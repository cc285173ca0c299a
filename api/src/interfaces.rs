//! The host's network interfaces: the connections of the API.
//!
//! On Linux a connection is an interface of `/sys/class/net`: its id and name
//! are the interface name (or the name and its `ifalias`), its index is what
//! the packet path sees. On other Unix systems `if_nameindex(3)` lists them.
//! On Windows a connection is a network adapter with IPv6 enabled
//! (`GetAdaptersAddresses`): its id is the adapter GUID, its name the friendly
//! name, its index the IPv6 interface index (see `interfaces/windows.rs`).

use crate::fw::FwError;

/// One network interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Stable id: the interface name on Unix, the adapter GUID on Windows.
    pub id: String,
    /// Friendly name (the alias if one is set, else the id).
    pub name: String,
    /// Interface index.
    pub index: u32,
}

/// The interfaces of this host that can be connections, sorted by id.
///
/// An interface name (the id) with a control character cannot be one: the
/// policy refuses such text everywhere ([`v6fw_engine::policy::check_id`]),
/// as it would reach a terminal raw. Such an interface is left out, with a
/// warning that shows its name escaped; packets on it are judged as on any
/// interface without a connection. A friendly name (Linux: `ifalias`) with
/// control characters, or too long, is replaced by the id.
pub fn list() -> Result<Vec<Interface>, FwError> {
    let mut out = listed()?;
    out.retain_mut(|i| {
        if v6fw_engine::policy::check_id(&i.id).is_err() {
            tracing::warn!(
                "interface {} is left out of the connections: its name has control characters; rename it (`ip link set NAME name NEW`)",
                v6fw_engine::policy::escaped(&i.id)
            );
            return false;
        }
        if v6fw_engine::policy::check_name(&i.name).is_err() {
            i.name.clone_from(&i.id);
        }
        true
    });
    Ok(out)
}

/// The interfaces of this host, sorted by id.
#[cfg(target_os = "linux")]
fn listed() -> Result<Vec<Interface>, FwError> {
    use std::path::Path;

    let base = Path::new("/sys/class/net");
    let entries = std::fs::read_dir(base).map_err(|e| FwError::io("list", base, e))?;
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let id = entry.file_name().to_string_lossy().into_owned();
        let dir = entry.path();
        let Some(index) = std::fs::read_to_string(dir.join("ifindex"))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
        else {
            continue; // vanished meanwhile, or not an interface
        };
        let alias = std::fs::read_to_string(dir.join("ifalias"))
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let name = if alias.is_empty() { id.clone() } else { alias };
        out.push(Interface { id, name, index });
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// The interfaces of this host, sorted by id.
#[cfg(all(unix, not(target_os = "linux")))]
fn listed() -> Result<Vec<Interface>, FwError> {
    let all = nix::net::if_::if_nameindex().map_err(|e| {
        FwError::Fail(format!("cannot list the network interfaces: {e}")).because(e)
    })?;
    let mut out: Vec<Interface> = all
        .iter()
        .map(|i| {
            let id = i.name().to_string_lossy().into_owned();
            Interface {
                name: id.clone(),
                id,
                index: i.index(),
            }
        })
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

#[cfg(windows)]
mod windows;

/// The network adapters of this host with IPv6 enabled, sorted by id.
#[cfg(windows)]
fn listed() -> Result<Vec<Interface>, FwError> {
    self::windows::list()
}

/// The interfaces of this host: not written for this platform (`E_NOTIMPL`).
#[cfg(not(any(unix, windows)))]
fn listed() -> Result<Vec<Interface>, FwError> {
    Err(FwError::NotImpl(
        "listing network adapters is not written for this platform yet; use global ports".into(),
    ))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn lists_loopback() {
        let list = super::list().unwrap_or_default();
        assert!(list.iter().any(|i| i.id == "lo" && i.index > 0), "{list:?}");
    }
}
