//! The control protocol: one JSON request per line, one JSON reply per line.
//! See `docs/control-protocol.md` for the full description.
//!
//! [`dispatch`] runs a request against a [`FirewallManager`]; the socket
//! server and the command line's direct (no daemon) path share it, so both
//! behave the same.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use v6fw_engine::{PolicyError, PortPair, PortRun, Protocol, Scope};

use crate::fw::{ConnectionInfo, FirewallManager, FwError, LogChange, OpenPorts};

mod results;
pub use results::{
    ChangedResult, ConnectionsResult, IsOpenResult, LogCountsResult, LogSettingsResult, PingResult,
    PortsResult, ReasonCount, StatsResult, WirePort,
};

/// Longest request line the server reads, newline included, from a client
/// that may not change the policy.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// Longest request line the server reads from a client that may change the
/// policy (root, `--admin-group`): a `load` of the largest policy file v6fw
/// writes ([`crate::store::MAX_POLICY_BYTES`]; JSON at most doubles it).
pub const MAX_ADMIN_REQUEST_BYTES: usize = 2 * crate::store::MAX_POLICY_BYTES + MAX_REQUEST_BYTES;

/// Longest reply line a client reads.
pub const MAX_REPLY_BYTES: usize = 16 * 1024 * 1024;

/// Who sent a request, as far as what it may do goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// May read, not change (`E_ACCESSDENIED` for a change).
    Reader,
    /// A member of `--admin-group` (Unix): may change the policy, but the log may
    /// only go to a file in the log directory that v6fw made (or a new
    /// one there): see [`crate::fw::check_delegated_log_path`].
    AdminGroup,
    /// Root (on Windows: an elevated Administrator or SYSTEM).
    Root,
}

impl Caller {
    /// Root, or a reader: the two callers a process without an admin group
    /// can be.
    pub fn root_if(admin: bool) -> Caller {
        if admin {
            Caller::Root
        } else {
            Caller::Reader
        }
    }

    /// Whether this caller may change the policy.
    pub fn may_change(self) -> bool {
        self != Caller::Reader
    }
}

/// A protocol given as a number (6, 17) or a name (`"tcp"`, `"udp"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ProtoArg {
    /// An IP protocol number; only 6 and 17 are valid.
    Number(i64),
    /// `tcp` or `udp` (any case).
    Name(String),
}

impl From<Protocol> for ProtoArg {
    fn from(p: Protocol) -> Self {
        ProtoArg::Name(p.name().to_string())
    }
}

/// One request. On the wire: an object whose `op` names the variant in
/// snake_case, with the variant's fields beside it. Unknown fields are refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Is the daemon there? Replies with the version and whether the caller may change.
    Ping,
    /// Every connection with its details.
    Connections,
    /// The global pairs.
    GlobalPorts,
    /// A connection's effective set (own ∪ (global − ignored)).
    OpenPorts {
        /// Connection id.
        connection: String,
    },
    /// Whether a pair is open: the connection's own pairs, or the global
    /// pairs when no connection is given.
    IsPortOpen {
        /// Connection id; absent: global.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        connection: Option<String>,
        /// Port, 1-65535.
        port: i64,
        /// 6/17 or tcp/udp.
        protocol: ProtoArg,
    },
    /// Opens a pair on a connection, or globally when no connection is given.
    OpenPort {
        /// Connection id; absent: global.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        connection: Option<String>,
        /// Port, 1-65535.
        port: i64,
        /// 6/17 or tcp/udp.
        protocol: ProtoArg,
        /// Name kept with the pair (the first name stays).
        #[serde(default)]
        name: String,
        /// Source prefixes the pair lets in (`fd00::/8`); empty or absent:
        /// any source. Another scope replaces the pair's scope.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        from: Vec<String>,
        /// With it, every pair `port..=last_port` (one change).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_port: Option<i64>,
    },
    /// Closes a pair on a connection, or globally when no connection is given.
    ClosePort {
        /// Connection id; absent: global.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        connection: Option<String>,
        /// Port, 1-65535.
        port: i64,
        /// 6/17 or tcp/udp.
        protocol: ProtoArg,
        /// With it, every pair `port..=last_port` (one change).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_port: Option<i64>,
    },
    /// Ignores a global pair on a connection.
    IgnoreGlobal {
        /// Connection id.
        connection: String,
        /// Port, 1-65535.
        port: i64,
        /// 6/17 or tcp/udp.
        protocol: ProtoArg,
    },
    /// Observes a global pair on a connection again.
    ObserveGlobal {
        /// Connection id.
        connection: String,
        /// Port, 1-65535.
        port: i64,
        /// 6/17 or tcp/udp.
        protocol: ProtoArg,
    },
    /// Turns a connection's firewall on.
    Enable {
        /// Connection id.
        connection: String,
    },
    /// Turns a connection's firewall off.
    Disable {
        /// Connection id.
        connection: String,
    },
    /// Re-reads the host's interfaces.
    Refresh,
    /// Replaces the whole policy with a policy file's text (`v6fw load`):
    /// validated as a whole, then one durable write and one publish.
    Load {
        /// The TOML text of the policy file.
        policy: String,
        /// The file's name, for messages.
        #[serde(default)]
        source: String,
    },
    /// Re-reads the daemon's own policy file (as SIGHUP does).
    Reload,
    /// The engine's counters per reason, the log's counters, the open pairs.
    Stats,
    /// The firewall log's settings.
    LogSettings,
    /// Changes the firewall log's settings; absent fields stay as they are.
    SetLog {
        /// Log every dropped packet.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dropped: Option<bool>,
        /// Log every accepted new connection.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        connections: Option<bool>,
        /// The log file, an absolute path.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<String>,
        /// Go back to `pfirewall.log` in the state directory.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        default_path: bool,
        /// Size cap in bytes (at least 1024).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_size: Option<u64>,
    },
}

impl Request {
    /// Whether the request changes the policy (and so needs root).
    pub fn is_change(&self) -> bool {
        matches!(
            self,
            Request::OpenPort { .. }
                | Request::ClosePort { .. }
                | Request::IgnoreGlobal { .. }
                | Request::ObserveGlobal { .. }
                | Request::Enable { .. }
                | Request::Disable { .. }
                | Request::Refresh
                | Request::Load { .. }
                | Request::Reload
                | Request::SetLog { .. }
        )
    }
}

/// A reply error: the HRESULT, its name and the message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireError {
    /// e.g. `E_INVALIDARG`.
    pub code: String,
    /// e.g. 2147942487 (0x80070057).
    pub hresult: u32,
    /// What happened and what to do.
    pub message: String,
}

impl From<&FwError> for WireError {
    fn from(e: &FwError) -> Self {
        WireError {
            code: e.code_name().to_string(),
            hresult: e.hresult(),
            message: e.message().to_string(),
        }
    }
}

impl From<WireError> for FwError {
    fn from(w: WireError) -> Self {
        FwError::from_hresult(w.hresult, w.message)
    }
}

/// One reply: `{"ok":true,"result":...}` or `{"ok":false,"error":{...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// Whether the request succeeded.
    pub ok: bool,
    /// The result, when `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// The error, when not `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<WireError>,
}

impl Reply {
    /// The reply for a dispatch result.
    pub fn from_result(r: Result<Value, FwError>) -> Self {
        match r {
            Ok(v) => Reply {
                ok: true,
                result: Some(v),
                error: None,
            },
            Err(e) => Reply::error(&e),
        }
    }

    /// An error reply.
    pub fn error(e: &FwError) -> Self {
        Reply {
            ok: false,
            result: None,
            error: Some(e.into()),
        }
    }

    /// The reply as one line of JSON, newline included.
    pub fn to_line(&self) -> String {
        let mut s = serde_json::to_string(self).unwrap_or_else(|e| {
            format!(
                r#"{{"ok":false,"error":{{"code":"E_UNEXPECTED","hresult":2147549183,"message":"reply not serializable: {}"}}}}"#,
                e.to_string().replace(['"', '\\'], "'")
            )
        });
        s.push('\n');
        s
    }

    /// Back to a result: the `result` value, or the error as an [`FwError`].
    pub fn into_result(self) -> Result<Value, FwError> {
        match (self.ok, self.result, self.error) {
            (true, r, _) => Ok(r.unwrap_or(Value::Null)),
            (false, _, Some(e)) => Err(e.into()),
            (false, _, None) => Err(FwError::Unexpected(
                "the daemon replied with an error but gave no reason".into(),
            )),
        }
    }
}

/// Parses one request line (without its newline). Bad JSON, an unknown `op`
/// or unknown fields are `E_INVALIDARG` with serde's explanation.
pub fn parse_request(line: &[u8]) -> Result<Request, FwError> {
    serde_json::from_slice(line).map_err(|e| {
        FwError::InvalidArg(format!(
            "the request is not valid: {e}; send one JSON object per line, e.g. {{\"op\":\"ping\"}} (see docs/control-protocol.md)"
        )).because(e)
    })
}

fn pair(port: i64, protocol: &ProtoArg) -> Result<PortPair, FwError> {
    let number = match protocol {
        ProtoArg::Number(n) => *n,
        ProtoArg::Name(s) => i64::from(s.parse::<Protocol>()?.number()),
    };
    Ok(PortPair::from_raw(port, number)?)
}

/// `port..=last_port` (or `port` alone) as a run; every bound is checked,
/// and a backwards range is `E_INVALIDARG`.
fn run(port: i64, last_port: Option<i64>, protocol: &ProtoArg) -> Result<PortRun, FwError> {
    let first = pair(port, protocol)?;
    let last = pair(last_port.unwrap_or(port), protocol)?;
    if first > last {
        let text = format!("{}:{}/{}", first.port(), last.port(), first.protocol());
        return Err(PolicyError::InvalidRange(text).into());
    }
    Ok(PortRun {
        protocol: first.protocol(),
        first: first.port(),
        last: last.port(),
    })
}

fn to_value<T: Serialize>(t: &T) -> Result<Value, FwError> {
    serde_json::to_value(t)
        .map_err(|e| FwError::Unexpected(format!("cannot encode the result: {e}")).because(e))
}

fn changed(c: bool) -> Result<Value, FwError> {
    to_value(&ChangedResult { changed: c })
}

/// Runs `req` against `mgr` for `caller`. A change by a [`Caller::Reader`]
/// is `E_ACCESSDENIED` and changes nothing; so is a log file outside the log
/// directory, or not v6fw's, set by a [`Caller::AdminGroup`] member (with
/// `set_log` or in a policy sent with `load`).
pub fn dispatch(
    mgr: &Arc<FirewallManager>,
    req: Request,
    caller: Caller,
) -> Result<Value, FwError> {
    if req.is_change() && !caller.may_change() {
        return Err(FwError::needs_root());
    }
    match req {
        Request::Ping => to_value(&PingResult {
            version: env!("CARGO_PKG_VERSION").to_string(),
            admin: caller.may_change(),
            state_dir: mgr.store().map(|s| s.dir().display().to_string()),
        }),
        Request::Connections => to_value(&ConnectionsResult {
            connections: mgr.connection_infos(),
        }),
        Request::GlobalPorts => to_value(&PortsResult::from(&mgr.global_open_ports())),
        Request::OpenPorts { connection } => to_value(&PortsResult::from(
            &mgr.connection(&connection)?.open_ports()?,
        )),
        Request::IsPortOpen {
            connection,
            port,
            protocol,
        } => {
            let p = pair(port, &protocol)?;
            let open = match connection {
                Some(id) => mgr.connection(&id)?.is_port_open(p.port(), p.protocol())?,
                None => mgr.is_global_port_open(p.port(), p.protocol())?,
            };
            to_value(&IsOpenResult { open })
        }
        Request::OpenPort {
            connection,
            port,
            protocol,
            name,
            from,
            last_port,
        } => {
            let r = run(port, last_port, &protocol)?;
            let from = Scope::parse(&from).map_err(PolicyError::from)?;
            changed(match connection {
                Some(id) => mgr.connection(&id)?.open_run(r, &name, &from)?,
                None => mgr.open_global_run(r, &name, &from)?,
            })
        }
        Request::ClosePort {
            connection,
            port,
            protocol,
            last_port,
        } => {
            let r = run(port, last_port, &protocol)?;
            changed(match connection {
                Some(id) => mgr.connection(&id)?.close_run(r)?,
                None => mgr.close_global_run(r)?,
            })
        }
        Request::IgnoreGlobal {
            connection,
            port,
            protocol,
        } => {
            let p = pair(port, &protocol)?;
            changed(
                mgr.connection(&connection)?
                    .ignore_global(p.port(), p.protocol())?,
            )
        }
        Request::ObserveGlobal {
            connection,
            port,
            protocol,
        } => {
            let p = pair(port, &protocol)?;
            changed(
                mgr.connection(&connection)?
                    .observe_global(p.port(), p.protocol())?,
            )
        }
        Request::Enable { connection } => changed(mgr.connection(&connection)?.enable()?),
        Request::Disable { connection } => changed(mgr.connection(&connection)?.disable()?),
        Request::Refresh => changed(mgr.refresh()?),
        Request::Load { policy, source } => {
            let name = if source.is_empty() {
                "the loaded policy"
            } else {
                source.as_str()
            };
            let state_dir = mgr.store().map(|s| s.dir().to_path_buf());
            let parsed =
                crate::store::parse_for(std::path::Path::new(name), state_dir.as_deref(), &policy)?;
            if caller == Caller::AdminGroup {
                if let Some(path) = parsed.logging.path.as_deref() {
                    if mgr.log_settings().path.as_deref() != Some(path) {
                        crate::fw::check_delegated_log_path(path, state_dir.as_deref())?;
                    }
                }
            }
            changed(mgr.load_text(parsed, policy)?)
        }
        Request::Reload => changed(mgr.reload()?),
        Request::Stats => to_value(&stats(mgr)),
        Request::LogSettings => {
            let l = mgr.log_settings();
            to_value(&LogSettingsResult {
                dropped: l.dropped,
                connections: l.connections,
                path: l.path,
                file: mgr.log_path().map(|p| p.display().to_string()),
                max_size: l.max_size,
            })
        }
        Request::SetLog {
            dropped,
            connections,
            path,
            default_path,
            max_size,
        } => {
            if default_path && path.is_some() {
                return Err(FwError::InvalidArg(
                    "give either a log path or default_path, not both".into(),
                ));
            }
            if caller == Caller::AdminGroup {
                if let Some(p) = &path {
                    crate::fw::check_delegated_log_path(p, mgr.state_dir())?;
                }
            }
            let path = if default_path {
                Some(None)
            } else {
                path.map(Some)
            };
            changed(mgr.set_log_settings(&LogChange {
                dropped,
                connections,
                path,
                max_size,
            })?)
        }
    }
}

/// The `stats` result for `mgr` now.
pub fn stats(mgr: &FirewallManager) -> StatsResult {
    let t = mgr.engine().counters().totals();
    let policy = mgr.policy();
    let logging = mgr.shared_log_settings().get();
    let log = mgr.log_counters().stats();
    StatsResult {
        packets: t.packets(),
        accepted: t.accepted(),
        dropped: t.dropped(),
        reasons: t
            .iter()
            .map(|(r, count)| ReasonCount {
                reason: r.as_str().to_string(),
                verdict: r.verdict().as_str().to_string(),
                count,
            })
            .collect(),
        flows_not_recorded: t.flows_not_recorded(),
        log: LogCountsResult {
            dropped: logging.dropped,
            connections: logging.connections,
            file: mgr.log_path().map(|p| p.display().to_string()),
            written: log.written,
            lost: log.lost,
            failed: log.failed,
            rotations: log.rotations,
        },
        global_ports: PortsResult::from(&OpenPorts::globals(&policy)).ports,
        connections: policy
            .connections
            .values()
            .map(ConnectionInfo::of)
            .collect(),
    }
}
