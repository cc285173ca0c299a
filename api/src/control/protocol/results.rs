//! The results of the control protocol's requests: what a reply's `result`
//! holds for each `op`, serialised as docs/control-protocol.md shows.

use serde::{Deserialize, Serialize};

use crate::fw::{ConnectionInfo, OpenPorts, PortScope};

/// One pair of a `ports` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WirePort {
    /// Port, 1-65535.
    pub port: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
    /// The name the pair was first opened with.
    pub name: String,
    /// `own` or `global`.
    pub scope: PortScope,
    /// The source prefixes the pair lets in; empty: any source.
    #[serde(default)]
    pub from: Vec<String>,
}

/// The result of `global_ports` and `open_ports`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortsResult {
    /// The pairs, sorted by protocol then port.
    pub ports: Vec<WirePort>,
}

impl From<&OpenPorts> for PortsResult {
    fn from(o: &OpenPorts) -> Self {
        PortsResult {
            ports: o
                .iter()
                .map(|p| WirePort {
                    port: p.port(),
                    protocol: p.protocol().name().to_string(),
                    name: p.name().to_string(),
                    scope: p.scope(),
                    from: p
                        .remote_addresses()
                        .prefixes()
                        .iter()
                        .map(ToString::to_string)
                        .collect(),
                })
                .collect(),
        }
    }
}

/// The result of `connections`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionsResult {
    /// Every connection, sorted by id.
    pub connections: Vec<ConnectionInfo>,
}

/// The result of a change: whether anything changed (a repeated open or
/// close succeeds without change).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangedResult {
    /// Whether the policy changed.
    pub changed: bool,
}

/// The result of `is_port_open`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IsOpenResult {
    /// Whether the pair is open.
    pub open: bool,
}

/// The result of `ping`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PingResult {
    /// The daemon's version.
    pub version: String,
    /// Whether this caller may change the policy.
    pub admin: bool,
    /// The state directory whose policy the daemon serves (absent: an
    /// in-memory policy, or an older daemon).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_dir: Option<String>,
}

/// One reason's count in a `stats` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReasonCount {
    /// SPEC.md's reason, e.g. `port_closed`.
    pub reason: String,
    /// `accept` or `drop`.
    pub verdict: String,
    /// Packets decided with this reason.
    pub count: u64,
}

/// The result of `stats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsResult {
    /// All packets decided.
    pub packets: u64,
    /// Packets accepted.
    pub accepted: u64,
    /// Packets dropped.
    pub dropped: u64,
    /// Every reason in SPEC.md's order, with its count.
    pub reasons: Vec<ReasonCount>,
    /// New flows not recorded: every slot they could take held a confirmed flow.
    #[serde(default)]
    pub flows_not_recorded: u64,
    /// The firewall log: settings in short and counters.
    #[serde(default)]
    pub log: LogCountsResult,
    /// The global pairs.
    #[serde(default)]
    pub global_ports: Vec<WirePort>,
    /// Every connection with its own and ignored pairs.
    #[serde(default)]
    pub connections: Vec<ConnectionInfo>,
}

/// The log part of a `stats` result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogCountsResult {
    /// Whether dropped packets are logged.
    pub dropped: bool,
    /// Whether accepted connections are logged.
    pub connections: bool,
    /// The log file (set, or the default in the state directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Lines written since the daemon started.
    pub written: u64,
    /// Lines lost because the queue to the writer was full.
    pub lost: u64,
    /// Lines not written: no file open, or a write error.
    pub failed: u64,
    /// Rotations to `FILE.old`.
    pub rotations: u64,
}

/// The result of `log_settings`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogSettingsResult {
    /// Whether dropped packets are logged.
    pub dropped: bool,
    /// Whether accepted connections are logged.
    pub connections: bool,
    /// The path set, if any (`null`: the default).
    pub path: Option<String>,
    /// The file written: the path set, or `pfirewall.log` in the state directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Size cap in bytes.
    pub max_size: u64,
}
