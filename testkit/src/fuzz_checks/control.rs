//! Fuzz check `control_request`: arbitrary bytes as control-protocol lines
//! through the parser and the handler of the daemon's control socket, on an
//! in-memory manager. The first byte says whether the peer is root.
//!
//! Invariants: nothing panics; every reply is one line of JSON that reads
//! back as a reply; an error carries one of the HRESULTs of Netfwv6.h; a peer
//! that is not root never changes the policy; a request that is not a change
//! never changes it either.

use v6fw_api::control::protocol::{dispatch, parse_request, Caller, Reply};
use v6fw_api::fw::{Code, FirewallManager};
use v6fw_engine::{Connection, Policy};

use super::Violation;

/// Most lines looked at per input.
const MAX_LINES: usize = 64;

/// Runs the check on one input.
pub fn control_request(data: &[u8]) -> Result<(), Violation> {
    let Some((&flags, lines)) = data.split_first() else {
        return Ok(());
    };
    // Bit 0: may change; bit 1 with it: as an --admin-group member.
    let caller = match flags & 3 {
        1 => Caller::Root,
        3 => Caller::AdminGroup,
        _ => Caller::Reader,
    };
    let admin = caller.may_change();
    let mut policy = Policy::default();
    policy
        .add_connection(Connection::new("eth0", "Ethernet", 2))
        .map_err(|e| e.to_string())?;
    let manager = FirewallManager::in_memory(policy);
    for line in lines.split(|b| *b == b'\n').take(MAX_LINES) {
        let before = manager.policy();
        let parsed = parse_request(line);
        let change = parsed.as_ref().is_ok_and(|r| r.is_change());
        let reply = Reply::from_result(parsed.and_then(|r| dispatch(&manager, r, caller)));
        let text = reply.to_line();
        if text.matches('\n').count() != 1 || !text.ends_with('\n') {
            return Err(format!("reply is not one line: {text:?}"));
        }
        let back: Reply = serde_json::from_str(&text)
            .map_err(|e| format!("reply does not read back ({e}): {text:?}"))?;
        if let Some(err) = &back.error {
            // One of the API's codes, under its own name.
            if !Code::ALL
                .iter()
                .any(|c| c.hresult() == err.hresult && c.name() == err.code)
            {
                return Err(format!("unknown HRESULT {:#x}: {text:?}", err.hresult));
            }
        }
        if (!admin || !change) && *manager.policy() != *before {
            return Err(format!(
                "policy changed by {:?} (admin {admin}, change {change})",
                String::from_utf8_lossy(line)
            ));
        }
    }
    Ok(())
}
