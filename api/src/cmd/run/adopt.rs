//! Which of the namespace's open sessions `v6fw run` adopts as confirmed
//! flows, at start and at every worker restart.
//!
//! Adoption keeps an SSH session open before the start from being cut. But
//! the kernel lists every ESTABLISHED socket, and any local user can make
//! hundreds: adopted blindly, they filled the flow table with confirmed
//! (unevictable, 5-day) flows and the host's own outbound connections then
//! got no state, their replies dropped. So two kinds are left out:
//!
//! - sessions whose both ends are the host's own addresses (`fd00::1` to
//!   `fd00::1`, or between two of its addresses): they go over `lo`, which
//!   v6fw never sees, so a flow for them would only take a slot;
//! - everything past a quarter of a worker's flow table ([`ADOPT_SHARE`]),
//!   in the kernel's order, so at least three quarters stay for the flows
//!   the workers record themselves.
//!
//! The log says how many were adopted and how many were left out, and why.
// Only Linux lists the open sessions (sock_diag); elsewhere none are adopted.
#![cfg_attr(not(target_os = "linux"), allow(dead_code))]

use std::collections::HashSet;

/// One open session of the host: protocol, local end, remote end.
pub(super) type Flow = (u8, ([u8; 16], u16), ([u8; 16], u16));

/// Adoption takes at most `1 / ADOPT_SHARE` of a worker's flow table.
pub(super) const ADOPT_SHARE: usize = 4;

/// What [`pick`] chose.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Picked {
    /// The sessions to adopt.
    pub(super) flows: Vec<Flow>,
    /// Left out: both ends are the host's own addresses.
    pub(super) own: usize,
    /// Left out: past the cap.
    pub(super) over_cap: usize,
    /// The cap: [`ADOPT_SHARE`]'s share of the flow table.
    pub(super) cap: usize,
}

/// Chooses the sessions to adopt into workers whose flow tables have
/// `flow_capacity` slots: those not wholly between the addresses in `own`,
/// up to the cap, repeats once.
pub(super) fn pick(
    sessions: impl IntoIterator<Item = Flow>,
    own: &HashSet<[u8; 16]>,
    flow_capacity: usize,
) -> Picked {
    let cap = flow_capacity / ADOPT_SHARE;
    let mut picked = Picked {
        cap,
        ..Picked::default()
    };
    let mut seen = HashSet::new();
    for flow in sessions {
        let (_, local, remote) = flow;
        if own.contains(&local.0) && own.contains(&remote.0) {
            picked.own += 1;
        } else if !seen.insert(flow) {
            // The same session listed twice: once is enough.
        } else if picked.flows.len() < cap {
            picked.flows.push(flow);
        } else {
            picked.over_cap += 1;
        }
    }
    picked
}

/// The namespace's open sessions (Linux, from the kernel) to adopt into
/// workers of `flow_capacity` slots, as [`pick`] chooses them; logged.
/// Elsewhere none.
pub(super) fn open_sessions(flow_capacity: usize) -> Vec<Flow> {
    #[cfg(target_os = "linux")]
    {
        let listed = match v6fw_capture::nfqueue::sessions::established() {
            Ok(list) => list,
            Err(e) => {
                tracing::warn!("cannot read the open sessions ({e}): none adopted");
                return Vec::new();
            }
        };
        let own = match own_addresses() {
            Ok(own) => own,
            Err(e) => {
                tracing::warn!(
                    "cannot list the host's own addresses ({e}): no open session adopted"
                );
                return Vec::new();
            }
        };
        let p = pick(
            listed.iter().map(|s| (s.proto, s.local, s.remote)),
            &own,
            flow_capacity,
        );
        tracing::info!("v6fw run: {}", describe(&p));
        p.flows
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = flow_capacity;
        Vec::new()
    }
}

/// The log line of `p`: what was adopted, what was left out and why.
pub(super) fn describe(p: &Picked) -> String {
    let tcp = p.flows.iter().filter(|f| f.0 == 6).count();
    format!(
        "adopted {} open sessions as flows ({tcp} TCP, {} UDP); skipped {} between the host's own addresses (they go over lo, which v6fw never sees) and {} over the cap of {} (a quarter of the flow table)",
        p.flows.len(),
        p.flows.len() - tcp,
        p.own,
        p.over_cap,
        p.cap
    )
}

/// Every IPv6 address of this network namespace's interfaces.
#[cfg(target_os = "linux")]
fn own_addresses() -> std::io::Result<HashSet<[u8; 16]>> {
    let all = nix::ifaddrs::getifaddrs().map_err(std::io::Error::from)?;
    Ok(all
        .filter_map(|a| a.address)
        .filter_map(|a| a.as_sockaddr_in6().map(|s| s.ip().octets()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(last: u8) -> [u8; 16] {
        let mut x = [0u8; 16];
        x[0] = 0xfd;
        x[15] = last;
        x
    }

    #[test]
    fn own_sessions_are_skipped_and_the_rest_capped() {
        let own: HashSet<[u8; 16]> = [a(1), a(3)].into_iter().collect();
        let mut sessions = Vec::new();
        // 300 self-connections (both ends the host's), as a local user makes.
        for port in 0..300u16 {
            sessions.push((6, (a(1), 40_000 + port), (a(1), 8000)));
        }
        // Between two of the host's own addresses: over lo too.
        sessions.push((6, (a(3), 5000), (a(1), 8000)));
        // 100 sessions with a peer, one listed twice.
        for port in 0..100u16 {
            sessions.push((6, (a(1), 50_000 + port), (a(2), 22)));
        }
        sessions.push((6, (a(1), 50_000), (a(2), 22)));
        let p = pick(sessions, &own, 256);
        assert_eq!(p.cap, 64);
        assert_eq!(p.own, 301);
        assert_eq!(p.flows.len(), 64);
        assert_eq!(p.over_cap, 36);
        assert!(p.flows.iter().all(|f| f.2 .0 == a(2)));
        let line = describe(&p);
        assert!(
            line.contains("adopted 64 open sessions")
                && line.contains("skipped 301 between the host's own addresses")
                && line.contains("36 over the cap of 64"),
            "{line}"
        );
    }
}
