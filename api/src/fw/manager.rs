//! [`FirewallManager`]: `INetFwV6Mgr` — global pairs, the connections, and the
//! one path every change takes.
//!
//! A change is applied as: validate → compute the next [`Policy`] and log
//! settings from the current ones → persist what changed
//! ([`PolicyStore::save_change`]: into the admin's document as it is, one
//! temp file, fsync, rename, fsync of the directory) → publish the policy to
//! the engine with its one [`v6fw_engine::Publisher`], which only the manager
//! holds, and the log settings to its [`SharedLogSettings`]. The manager's own
//! writer lock is held across all four steps, so the order of changes on disk
//! is the order in which the engine and the log hooks see them, and a change
//! is on disk before anyone (the caller, a control-socket client) hears that
//! it was made. Readers never take that lock: they read the `Arc<Policy>` of
//! the current snapshot, or the current `Arc<LogSettings>`.
//!
//! The manager is the only writer of its engine's table and of its log
//! settings: it builds the engine and keeps its publisher, so no one else can
//! change the table.
//!
//! What the manager learns by itself (the host's interfaces, adopted as
//! connections by [`FirewallManager::refresh_from`]) and what it reads back
//! ([`FirewallManager::reload`]) is published but never written: the file is
//! written only for a change someone asked for.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;
use v6fw_engine::{
    Connection, Engine, Policy, PolicyError, PortPair, PortRun, Protocol, Publisher, Scope,
    StateConfig,
};

use super::collection::{ConnectionInfo, OpenPorts};
use super::connection::FirewallConnection;
use super::error::FwError;
use crate::interfaces::{self, Interface};
use crate::log::{LogCounters, LogSettings, SharedLogSettings};
use crate::store::{PolicyFile, PolicyStore, StoreLock};

/// Longest name a pair may be given, in characters (the engine's).
pub use v6fw_engine::policy::MAX_NAME_CHARS;

/// `INetFwV6Mgr`: the global pairs, the connections and the log settings of
/// one host, backed by a durable policy file; the policy is published to an
/// [`Engine`].
pub struct FirewallManager {
    engine: Arc<Engine>,
    /// The engine's one writer: every change is stored, then published here.
    publisher: Publisher,
    store: Option<PolicyStore>,
    read_only: bool,
    writer: Mutex<()>,
    /// The firewall log's settings in effect (`[logging]`); changed only
    /// here, after they are stored.
    logging: Arc<SharedLogSettings>,
    /// The firewall log's counters (lines written, lost, ...), for `stats`.
    log_counters: Arc<LogCounters>,
    /// Held for the manager's life when it may write the store.
    _lock: Option<StoreLock>,
}

impl fmt::Debug for FirewallManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FirewallManager")
            .field("store", &self.store)
            .field("read_only", &self.read_only)
            .finish_non_exhaustive()
    }
}

impl FirewallManager {
    /// Opens the policy of `state_dir` for reading and changing: creates the
    /// directory if needed, loads `policy.toml` (or starts empty: the file is
    /// created by the first change), refreshes the connections from the
    /// host's interfaces (in memory), and builds the engine. A corrupt policy file is an error naming the file and line.
    ///
    /// The manager holds the state directory's writer lock for its whole
    /// life: a second writable manager on the same directory (another daemon,
    /// or a command editing the file while a daemon runs) fails with `E_FAIL`
    /// after about two seconds. Read-only managers take no lock.
    pub fn open(state_dir: &Path) -> Result<Arc<FirewallManager>, FwError> {
        Self::open_with_state(state_dir, None)
    }

    /// [`FirewallManager::open`] with explicit flow/fragment table sizes and
    /// timeouts (`None`: the policy file's `[state]` table).
    pub fn open_with_state(
        state_dir: &Path,
        state: Option<StateConfig>,
    ) -> Result<Arc<FirewallManager>, FwError> {
        let store = PolicyStore::new(state_dir);
        store.prepare()?;
        let lock = store.lock()?;
        store.remove_temp_files(&lock)?;
        let file = store.load()?.unwrap_or_default();
        let state = state.unwrap_or_else(|| StateConfig::from(&file.policy.state));
        let mut mgr = Self::unattached(file, state);
        mgr.store = Some(store);
        mgr._lock = Some(lock);
        let mgr = Arc::new(mgr);
        match mgr.refresh() {
            Ok(_) => {}
            Err(FwError::NotImpl(m)) => tracing::warn!("connections not refreshed: {m}"),
            Err(e) => return Err(e),
        }
        Ok(mgr)
    }

    /// Opens the policy of `state_dir` to read only (for unprivileged
    /// listings): nothing on disk is created or changed; a missing file reads
    /// as an empty policy; every change is refused with `E_ACCESSDENIED`.
    /// Connections are refreshed in memory only.
    pub fn open_read_only(state_dir: &Path) -> Result<Arc<FirewallManager>, FwError> {
        let store = PolicyStore::new(state_dir);
        let file = store.load()?.unwrap_or_default();
        // Refresh in memory first (no store yet, so nothing is written),
        // then attach the store and refuse every later change.
        let state = StateConfig::from(&file.policy.state);
        let mut mgr = Self::unattached(file, state);
        if let Ok(list) = interfaces::list() {
            mgr.refresh_from(&list)?;
        }
        mgr.store = Some(store);
        mgr.read_only = true;
        Ok(Arc::new(mgr))
    }

    /// A manager with no file behind it (tests, embedding), with the default
    /// log settings: changes are published but not persisted. Connections
    /// are not refreshed.
    pub fn in_memory(policy: Policy) -> Arc<FirewallManager> {
        let state = StateConfig::from(&policy.state);
        Arc::new(Self::unattached(policy.into(), state))
    }

    /// A writable manager publishing `file`'s policy (tables sized by
    /// `state`), with no store and no lock.
    fn unattached(file: PolicyFile, state: StateConfig) -> FirewallManager {
        let (engine, publisher) = Engine::with_publisher(file.policy, state);
        FirewallManager {
            engine: Arc::new(engine),
            publisher,
            store: None,
            read_only: false,
            writer: Mutex::new(()),
            logging: SharedLogSettings::new(file.logging),
            log_counters: LogCounters::new(),
            _lock: None,
        }
    }

    /// The engine the policy is published to (for the packet loop and stats).
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The policy file behind this manager, if any.
    pub fn store(&self) -> Option<&PolicyStore> {
        self.store.as_ref()
    }

    /// The firewall log's settings in effect, for the daemon's log hooks
    /// and writer to follow (they change when the manager stores a change).
    pub fn shared_log_settings(&self) -> &Arc<SharedLogSettings> {
        &self.logging
    }

    /// The firewall log's counters: the daemon's log writer and senders
    /// count into them, `stats` reads them.
    pub fn log_counters(&self) -> &Arc<LogCounters> {
        &self.log_counters
    }

    /// Whether every change is refused ([`FirewallManager::open_read_only`]).
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// The current policy: immutable, stable however long it is held.
    pub fn policy(&self) -> Arc<Policy> {
        self.engine.table().policy()
    }

    /// Applies one change to the policy; see [`change_file`](Self::change_file).
    pub(crate) fn change<T>(
        &self,
        change: impl FnOnce(&mut Policy) -> Result<T, FwError>,
    ) -> Result<T, FwError> {
        self.change_file(|f| change(&mut f.policy))
    }

    /// Applies one change: validate and compute (in `change`, on a copy of the
    /// current policy and log settings) → persist what changed into the
    /// policy file ([`PolicyStore::save_change`]) → publish what changed.
    /// Returns what `change` returned; on any error nothing is persisted or
    /// published.
    pub(crate) fn change_file<T>(
        &self,
        change: impl FnOnce(&mut PolicyFile) -> Result<T, FwError>,
    ) -> Result<T, FwError> {
        self.apply(Persist::Edit, change)
    }

    /// The one path of every change: compute `change` on a copy of the
    /// current policy and log settings, persist as `persist` says, publish.
    fn apply<T>(
        &self,
        persist: Persist,
        change: impl FnOnce(&mut PolicyFile) -> Result<T, FwError>,
    ) -> Result<T, FwError> {
        if self.read_only && !matches!(persist, Persist::No) {
            return Err(FwError::needs_root());
        }
        let _writer = self.writer.lock();
        let (policy, logging) = (self.engine.table().policy(), self.logging.get());
        let before = PolicyFile {
            policy: Policy::clone(&policy),
            logging: LogSettings::clone(&logging),
        };
        let mut next = before.clone();
        let out = change(&mut next)?;
        let (new_policy, new_logging) = (next.policy != *policy, next.logging != *logging);
        if let Some(store) = &self.store {
            match persist {
                Persist::Edit if new_policy || new_logging => store.save_change(&before, &next)?,
                Persist::Replace(text) => store.replace(&text)?,
                Persist::Edit | Persist::No => {}
            }
        }
        if new_policy {
            self.publisher.replace(next.policy);
        }
        if new_logging {
            self.logging.set(next.logging);
        }
        Ok(out)
    }

    // ----- INetFwV6Mgr: global ports -----

    /// Opens a global pair on every connection that does not ignore it
    /// (`INetFwV6Mgr::OpenPort`). Opening an open pair changes nothing and the
    /// first name stays. Returns whether anything changed.
    pub fn open_global_port(
        &self,
        port: u16,
        protocol: Protocol,
        name: &str,
    ) -> Result<bool, FwError> {
        self.open_global_port_from(port, protocol, name, Scope::ANY)
    }

    /// Opens a global pair for the sources in `from` only (SPEC.md,
    /// "Scopes"; `Scope::ANY`: every source). Opening it again with another
    /// scope replaces the scope and is a change; the first name stays.
    pub fn open_global_port_from(
        &self,
        port: u16,
        protocol: Protocol,
        name: &str,
        from: Scope,
    ) -> Result<bool, FwError> {
        let pair = PortPair::new(port, protocol)?;
        let name = check_name(name)?;
        self.change(|p| Ok(p.open_global_from(pair, name, from)))
    }

    /// Opens every pair of `run` globally for `from`, in one change (one
    /// durable write, one publish). Returns whether anything changed.
    pub fn open_global_run(&self, run: PortRun, name: &str, from: &Scope) -> Result<bool, FwError> {
        let name = check_name(name)?;
        self.change(|p| {
            Ok(run.pairs().fold(false, |c, pair| {
                p.open_global_from(pair, name, from.clone()) | c
            }))
        })
    }

    /// Closes every global pair of `run`, in one change.
    pub fn close_global_run(&self, run: PortRun) -> Result<bool, FwError> {
        self.change(|p| Ok(run.pairs().fold(false, |c, pair| p.close_global(pair) | c)))
    }

    /// Closes a global pair; closing a closed pair changes nothing. Returns
    /// whether anything changed.
    pub fn close_global_port(&self, port: u16, protocol: Protocol) -> Result<bool, FwError> {
        let pair = PortPair::new(port, protocol)?;
        self.change(|p| Ok(p.close_global(pair)))
    }

    /// Whether a global pair is open.
    pub fn is_global_port_open(&self, port: u16, protocol: Protocol) -> Result<bool, FwError> {
        let pair = PortPair::new(port, protocol)?;
        Ok(self.policy().is_global_open(pair))
    }

    /// The global pairs as they are now, as a snapshot that never changes.
    pub fn global_open_ports(&self) -> OpenPorts {
        OpenPorts::globals(&self.policy())
    }

    /// Switches the tracking of outbound flows (replies `established`) on or
    /// off; persisted like any change. Returns whether anything changed.
    pub fn set_state_tracking(&self, on: bool) -> Result<bool, FwError> {
        self.change(|p| Ok(std::mem::replace(&mut p.state.enabled, on) != on))
    }

    // ----- INetFwV6Mgr: connections -----

    /// Handles to every connection, sorted by id (`EnumerateConnections`).
    pub fn connections(self: &Arc<Self>) -> Vec<FirewallConnection> {
        self.policy()
            .connections
            .keys()
            .map(|id| FirewallConnection::new(Arc::clone(self), id.clone()))
            .collect()
    }

    /// The details of every connection, from one snapshot, sorted by id.
    pub fn connection_infos(&self) -> Vec<ConnectionInfo> {
        self.policy()
            .connections
            .values()
            .map(ConnectionInfo::of)
            .collect()
    }

    /// A handle to one connection (`GetConnection`); an unknown id is
    /// `E_INVALIDARG`.
    pub fn connection(self: &Arc<Self>, id: &str) -> Result<FirewallConnection, FwError> {
        self.policy().connection(id)?;
        Ok(FirewallConnection::new(Arc::clone(self), id.to_string()))
    }

    /// Re-reads the host's interfaces; see [`refresh_from`](Self::refresh_from).
    pub fn refresh(&self) -> Result<bool, FwError> {
        let list = interfaces::list()?;
        self.refresh_from(&list)
    }

    /// Brings the connections up to date with `interfaces`: a new interface
    /// becomes a connection with the firewall on and no pairs of its own; a
    /// known one keeps its policy and takes the current index and name. A
    /// connection whose interface is gone (or whose index another interface
    /// now has) keeps its policy with index 0 until it comes back. Returns
    /// whether anything changed. Published only: the policy file is not
    /// written (a connection reaches it with the first change of its own).
    pub fn refresh_from(&self, interfaces: &[Interface]) -> Result<bool, FwError> {
        self.apply(Persist::No, |f| {
            let p = &mut f.policy;
            let before = p.clone();
            adopt(p, interfaces)?;
            Ok(*p != before)
        })
    }

    /// Replaces the whole policy and log settings with `file`'s (`v6fw
    /// load`, like `nft -f`; a bare [`Policy`] brings the default log
    /// settings, as a file without `[logging]`): one change, so one durable
    /// write (the file becomes [`render`](crate::store::render) of `file`)
    /// and one publish, with the host's interfaces applied to it in memory
    /// (see [`refresh_from`](Self::refresh_from)). A packet is decided by the
    /// old policy or the new one, never by a mix. Returns whether anything
    /// changed.
    pub fn load(&self, file: impl Into<PolicyFile>) -> Result<bool, FwError> {
        let file = file.into();
        let text = crate::store::render(&file)?;
        self.load_text(file, text)
    }

    /// [`load`](Self::load) of a policy file's `text` (already parsed into
    /// `file`): the file becomes `text` as it was given, comments and all.
    /// Written even when the policy stays the same, so the file is the one
    /// loaded.
    pub fn load_text(&self, file: PolicyFile, text: String) -> Result<bool, FwError> {
        self.replace_with(file, Persist::Replace(text))
    }

    fn replace_with(&self, file: PolicyFile, persist: Persist) -> Result<bool, FwError> {
        let list = match interfaces::list() {
            Ok(list) => Some(list),
            Err(FwError::NotImpl(_)) => None,
            Err(e) => return Err(e),
        };
        self.apply(persist, |f| {
            let before = std::mem::replace(f, file);
            if let Some(list) = &list {
                adopt(&mut f.policy, list)?;
            }
            Ok(*f != before)
        })
    }

    /// Re-reads this manager's own policy file and publishes it (SIGHUP,
    /// `v6fw reload`) with the host's interfaces applied; the file is not
    /// written. A file that is missing, unsafe, still being written or does
    /// not parse is refused with its error, and the running policy stays.
    pub fn reload(&self) -> Result<bool, FwError> {
        let store = self.store().ok_or_else(|| {
            FwError::Fail("this daemon has no policy file to reload (in-memory policy)".into())
        })?;
        let file = store.load()?.ok_or_else(|| {
            FwError::Fail(format!(
                "{} is gone (or was never made: v6fw creates it with the first change): put it back, or change the policy with `v6fw ports` or `v6fw load`; the running policy stays",
                store.path().display()
            ))
        })?;
        self.replace_with(file, Persist::No)
    }

    /// Adds one connection by hand (firewall on, no pairs); an existing id is
    /// `E_INVALIDARG`.
    pub fn add_connection(&self, id: &str, name: &str, if_index: u32) -> Result<(), FwError> {
        v6fw_engine::policy::check_id(id).map_err(PolicyError::from)?;
        let name = check_name(name)?;
        self.change(|p| Ok(p.add_connection(Connection::new(id, name, if_index))?))
    }
}

/// How a change reaches the policy file.
enum Persist {
    /// Not at all: what the manager learnt or read back.
    No,
    /// Into the document as it is, if anything changed.
    Edit,
    /// The file becomes this text.
    Replace(String),
}

/// Brings the connections of `p` up to date with `interfaces`; see
/// [`FirewallManager::refresh_from`].
///
/// Only the connections whose index or name changed are written (a policy
/// version shares the others with the one before), so a refresh on a host
/// with a thousand interfaces costs what changed.
fn adopt(p: &mut Policy, interfaces: &[Interface]) -> Result<(), FwError> {
    let by_id: std::collections::HashMap<&str, &Interface> =
        interfaces.iter().map(|i| (i.id.as_str(), i)).collect();
    let stale: Vec<String> = p
        .connections
        .iter()
        .filter(|(_, c)| match by_id.get(c.id.as_str()) {
            Some(i) => c.if_index != i.index || c.name != i.name,
            None => c.if_index != 0,
        })
        .map(|(id, _)| id.clone())
        .collect();
    for id in stale {
        let Some(conn) = p.connections.get_mut(&id) else {
            continue;
        };
        let same = by_id.get(conn.id.as_str()).copied();
        conn.if_index = same.map_or(0, |i| i.index);
        if let Some(i) = same {
            conn.name.clone_from(&i.name);
        }
    }
    for i in interfaces {
        if !p.connections.contains_key(&i.id) {
            p.add_connection(Connection::new(i.id.as_str(), i.name.as_str(), i.index))?;
        }
    }
    Ok(())
}

/// Validates the name of a pair or connection: the engine's one check
/// ([`v6fw_engine::policy::check_name`]: at most [`MAX_NAME_CHARS`]
/// characters, no control characters), as `E_INVALIDARG`.
pub(crate) fn check_name(name: &str) -> Result<&str, FwError> {
    v6fw_engine::policy::check_name(name).map_err(PolicyError::from)?;
    Ok(name)
}
