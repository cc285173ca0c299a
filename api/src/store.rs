//! The durable policy: `policy.toml` in a state directory.
//!
//! The file is the admin's. v6fw writes it only to carry out a change
//! someone asked for (`v6fw ports ...`, `v6fw log set`, `v6fw load`, `v6fw
//! run --open`), never for its own bookkeeping: what the daemon learns at run
//! time (the interfaces, their indexes) stays in memory. A change is written
//! into the document as it is (`store/doc.rs`: comments, order and spellings stay;
//! pairs are written as compact ranges), and only over the text v6fw last
//! read or wrote: a file edited on disk since then is never overwritten, the
//! change is refused with an error that says to `v6fw reload` first.
//!
//! Every write is atomic before it is acknowledged: the new text goes to a
//! temporary file in the same directory, which is written, fsynced, renamed
//! over `policy.toml`, and then the directory itself is fsynced so the
//! rename survives a power cut. A reader (or a restart after `SIGKILL`) sees
//! either the old file or the new one, never a mix. Reading is careful too
//! (`store/file.rs`): no symbolic link, no file another user owns or may write, and
//! no file still being written in place.
//!
//! A file that does not parse is never silently replaced: loading fails with
//! an error naming the file, the line and the column. Loading is strict: an
//! unknown key or table (a typo such as `[global]` or `enabeld`), one pair
//! written twice in two spellings (`22/tcp` and `022/tcp`), `[logging]`
//! values `v6fw log set` would refuse, and an empty or unreadable file are
//! all errors that say how to recover, so that a hand edit is never lost.
//!
//! The file holds a [`PolicyFile`]: the engine's [`Policy`] and the daemon's
//! `[logging]` table ([`LogSettings`]), which the engine accepts unread. The
//! text is read twice, once for each, so both keep toml's line and column.

mod doc;
mod file;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use serde::{Deserialize, Serialize};
use toml_edit::DocumentMut;
use v6fw_engine::Policy;

use crate::fw::{check_log_settings, FwError};
use crate::log::LogSettings;

/// What a policy file holds: the engine's policy and the daemon's tables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyFile {
    /// Everything the engine decides by.
    pub policy: Policy,
    /// `[logging]`: the firewall log's settings (the defaults when the file
    /// has no such table).
    pub logging: LogSettings,
}

impl From<Policy> for PolicyFile {
    /// `policy` with the default log settings (a file without `[logging]`).
    fn from(policy: Policy) -> Self {
        PolicyFile {
            policy,
            logging: LogSettings::default(),
        }
    }
}

/// The daemon's tables of a policy file. Not `deny_unknown_fields`: every
/// other key is the engine's, and [`Policy`] refuses the unknown ones.
#[derive(Serialize, Deserialize)]
struct DaemonTables<L> {
    #[serde(default)]
    logging: L,
}

/// The policy file's name inside the state directory.
pub const POLICY_FILE: &str = "policy.toml";

/// The largest policy file v6fw writes, and `v6fw load` sends: a change
/// that would make the file larger is refused. With pairs written as ranges
/// a file stays far below it (every pair of both protocols open is one line
/// each).
pub const MAX_POLICY_BYTES: usize = 8 << 20;

pub use file::{SETTLE, SETTLE_LIMIT};

/// The first line of a policy file v6fw creates.
pub const HEADER: &str = "# v6fw policy. `v6fw ports ...` and `v6fw log set` change it in place (comments and layout stay); after a hand edit, run `v6fw check` on it, then `v6fw reload`.\n";

/// The lock file a writer holds for as long as it may change the policy.
pub const LOCK_FILE: &str = "policy.lock";

/// The file in the state directory where the daemon records the control
/// socket (or pipe) it serves, so that `--state-dir DIR` leads a client to it.
pub const SOCKET_FILE: &str = "control.socket";

/// Records `socket` as the control socket of the daemon using `state_dir`
/// (written to a temporary file, then renamed: never half a path).
pub fn record_socket(state_dir: &Path, socket: &Path) -> Result<(), FwError> {
    let path = state_dir.join(SOCKET_FILE);
    let tmp = state_dir.join(format!("{TMP_PREFIX}.socket.{}", std::process::id()));
    let text = format!("{}\n", socket.display());
    file::write_synced(&tmp, text.as_bytes(), 0o644)
        .and_then(|()| fs::rename(&tmp, &path).map_err(|e| FwError::io("replace", &path, e)))
        .inspect_err(|_| {
            let _ = fs::remove_file(&tmp);
        })
}

/// The control socket the daemon using `state_dir` recorded, if any.
pub fn recorded_socket(state_dir: &Path) -> Option<PathBuf> {
    let text = fs::read_to_string(state_dir.join(SOCKET_FILE)).ok()?;
    let line = text.lines().next()?.trim();
    (!line.is_empty()).then(|| PathBuf::from(line))
}

/// Prefix of the temporary files a write goes through.
pub const TMP_PREFIX: &str = ".policy.toml.tmp";

/// Distinguishes temporary files of concurrent writers in one process.
static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Where the policy lived before the FHS defaults (v6fw 0.1's state
/// directory); a daemon on the default finding a policy only there stops and
/// says to move it.
#[cfg(unix)]
pub const OLD_STATE_DIR: &str = "/var/lib/v6fw";

/// The default state directory: `/etc/v6fw` (FHS: the policy is the host's
/// configuration; the log goes to `/var/log/v6fw`),
/// `%ProgramData%\v6fw` on Windows.
pub fn default_state_dir() -> PathBuf {
    #[cfg(windows)]
    {
        let base = std::env::var_os("ProgramData").unwrap_or_else(|| "C:\\ProgramData".into());
        PathBuf::from(base).join("v6fw")
    }
    #[cfg(not(windows))]
    {
        PathBuf::from("/etc/v6fw")
    }
}

/// On the default state directory, refuses to start with a new, empty
/// policy while the old default (`/var/lib/v6fw`) still holds the admin's:
/// an empty policy would close every port, SSH included.
pub fn check_moved(state_dir: &Path) -> Result<(), FwError> {
    #[cfg(unix)]
    if state_dir == default_state_dir() {
        return check_moved_from(state_dir, Path::new(OLD_STATE_DIR));
    }
    let _ = state_dir;
    Ok(())
}

/// [`check_moved`] between two given directories.
#[cfg_attr(not(unix), allow(dead_code))]
fn check_moved_from(state_dir: &Path, old_dir: &Path) -> Result<(), FwError> {
    let (old, new) = (old_dir.join(POLICY_FILE), state_dir.join(POLICY_FILE));
    if new.exists() || !old.exists() {
        return Ok(());
    }
    Err(FwError::Fail(format!(
        "the policy is now kept in {} (it was {}): move it with `mkdir -p {} && mv {} {}`, \
         or keep the old place with --state-dir {}",
        new.display(),
        old.display(),
        state_dir.display(),
        old.display(),
        new.display(),
        old_dir.display()
    )))
}

/// Where the policy of one state directory lives, and how it is read and
/// written. Clones share what was last read or written.
#[derive(Debug, Clone)]
pub struct PolicyStore {
    dir: PathBuf,
    path: PathBuf,
    /// The file's text as this store last read or wrote it (`Some(None)`:
    /// there was no file; `None`: not read yet). A change is written only
    /// over this text.
    seen: Arc<Mutex<Option<Option<String>>>>,
}

impl PolicyStore {
    /// The store of `state_dir` (nothing is touched yet).
    pub fn new(state_dir: &Path) -> Self {
        PolicyStore {
            dir: state_dir.to_path_buf(),
            path: state_dir.join(POLICY_FILE),
            seen: Arc::new(Mutex::new(None)),
        }
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The policy file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates the state directory (mode 0755; on Windows SYSTEM and
    /// Administrators full control, Users list it) if it is missing. The
    /// directory must be owned by root (or the user running v6fw; on Windows
    /// SYSTEM or Administrators) and writable by nobody else: anyone who
    /// could write there could plant a `policy.toml` for the daemon to load.
    pub fn prepare(&self) -> Result<(), FwError> {
        create_dir(&self.dir)?;
        #[cfg(unix)]
        crate::private_dir::open_private_dir(
            &self.dir,
            "state directory",
            "keep it root's and mode 0755 (`chown root`, `chmod 0755`) or choose another --state-dir",
        )
        .map_err(|e| FwError::caused(crate::fw::Code::Fail, e))?;
        Ok(())
    }

    /// Removes temporary files a killed writer left behind. Call it only
    /// while holding [`PolicyStore::lock`], so no live writer's file is taken.
    pub fn remove_temp_files(&self, _lock: &StoreLock) -> Result<(), FwError> {
        let entries =
            fs::read_dir(&self.dir).map_err(|e| FwError::io("read the directory", &self.dir, e))?;
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
                let p = entry.path();
                fs::remove_file(&p).map_err(|e| FwError::io("remove", &p, e))?;
            }
        }
        Ok(())
    }

    /// Takes the exclusive writer lock of the state directory (std's file
    /// lock on `policy.lock`: `flock`, or `LockFileEx` on Windows), waiting up to about two
    /// seconds for another writer. One process at a time may change a policy
    /// file; the lock is released when the returned value is dropped or the
    /// process dies.
    ///
    /// The lock file is the owner's alone (see [`crate::lock_file::open`]): nobody
    /// else can open it, so nobody else can hold the lock to keep the daemon
    /// from starting or root's offline changes from being made.
    pub fn lock(&self) -> Result<StoreLock, FwError> {
        let path = self.dir.join(LOCK_FILE);
        let file = crate::lock_file::open(&path)
            .map_err(|e| FwError::io("open the lock file", &path, e))?;
        for attempt in 0..40 {
            let err = match try_lock_exclusive(&file) {
                Ok(true) => return Ok(StoreLock { _file: file }),
                Ok(false) => None,
                Err(e) => Some(e),
            };
            if err.is_some() || attempt == 39 {
                let why =
                    err.map_or_else(|| "held by another process".to_string(), |e| e.to_string());
                return Err(FwError::Fail(format!(
                    "the policy in {} is in use by another v6fw process ({why}): if a daemon runs, talk to it through its --socket, or stop it",
                    self.dir.display()
                )));
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Ok(StoreLock { _file: file })
    }

    /// The stored policy file, or `None` if there is no file yet. A file that
    /// cannot be read, is empty, does not parse or holds a value v6fw would
    /// refuse is an `E_FAIL` (see [`parse`]) naming the file, and never read
    /// as an empty policy; so is a file that is not safe to trust (a link,
    /// not root's, writable by others) or that is still being written (it
    /// is read once it has been left alone for [`SETTLE`]). The daemon's
    /// start and reload both go through here; what was read becomes the
    /// text the next change is written over.
    pub fn load(&self) -> Result<Option<PolicyFile>, FwError> {
        let Some(bytes) = file::read_settled(&self.path)? else {
            *self.seen.lock() = Some(None);
            return Ok(None);
        };
        let text = self.utf8(bytes)?;
        let parsed = parse(&self.path, &text)?;
        *self.seen.lock() = Some(Some(text));
        Ok(Some(parsed))
    }

    fn utf8(&self, bytes: Vec<u8>) -> Result<String, FwError> {
        String::from_utf8(bytes).map_err(|e| {
            FwError::Fail(format!(
                "the policy file {} is not UTF-8 text ({e}): restore it from a backup or fix the bytes there",
                self.path.display()
            )).because(e)
        })
    }

    /// Writes the change from `before` to `after` into the file as it is
    /// (see `store/doc.rs`: only what changed is touched), atomically and durably.
    /// Refused, with nothing written, when the file was changed on disk
    /// since this store last read or wrote it: the change would be written
    /// over an edit nobody has applied yet.
    pub fn save_change(&self, before: &PolicyFile, after: &PolicyFile) -> Result<(), FwError> {
        let mut seen = self.seen.lock();
        let now = file::read_now(&self.path)?
            .map(|b| self.utf8(b))
            .transpose()?;
        if seen.as_ref().is_some_and(|s| *s != now) {
            return Err(FwError::Fail(format!(
                "{} was changed on disk since v6fw last read it: nothing was changed, so that edit is not undone; \
                 apply it first (`v6fw check {p}`, then `v6fw reload`, or restart v6fw), then repeat this change",
                self.path.display(),
                p = self.path.display()
            )));
        }
        let fresh = now.is_none();
        let text = now.unwrap_or_default();
        let mut document: DocumentMut = text.parse().map_err(|e| {
            FwError::Fail(format!(
                "the policy file {} does not parse ({e}): fix it there, then `v6fw reload`",
                self.path.display()
            ))
        })?;
        doc::apply(&mut document, before, after, false)?;
        let out = if fresh {
            format!("{HEADER}{document}")
        } else {
            document.to_string()
        };
        self.write(&out)?;
        *seen = Some(Some(out));
        Ok(())
    }

    /// Replaces the whole file with `text` (`v6fw load`: the admin gave
    /// the whole policy, comments and all), atomically and durably.
    pub fn replace(&self, text: &str) -> Result<(), FwError> {
        let mut seen = self.seen.lock();
        self.write(text)?;
        *seen = Some(Some(text.to_string()));
        Ok(())
    }

    /// Writes `file` as a new document ([`render`]), replacing the file.
    pub fn save(&self, file: &PolicyFile) -> Result<(), FwError> {
        self.replace(&render(file)?)
    }

    /// Writes `text` over the file: temp file, fsync, rename, fsync of the
    /// directory. The file keeps its mode (without group or other write).
    fn write(&self, text: &str) -> Result<(), FwError> {
        if text.len() > MAX_POLICY_BYTES {
            return Err(FwError::Fail(format!(
                "the policy would be {} bytes, more than v6fw writes or loads ({MAX_POLICY_BYTES}): \
                 nothing was changed; open ranges (`v6fw ports open 6000:6999/tcp`) instead of single pairs",
                text.len()
            )));
        }
        #[cfg(unix)]
        let mode = file::mode_of(&self.path);
        #[cfg(not(unix))]
        let mode = 0o644;
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = self
            .dir
            .join(format!("{TMP_PREFIX}.{}.{n}", std::process::id()));
        let result = file::write_synced(&tmp, text.as_bytes(), mode)
            .and_then(|()| {
                fs::rename(&tmp, &self.path).map_err(|e| FwError::io("replace", &self.path, e))
            })
            .and_then(|()| file::sync_dir(&self.dir));
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }
}

/// Tries once to lock `file` exclusively: `Ok(false)` if another process
/// holds it. std's lock is `flock` on Unix and `LockFileEx` on Windows, both
/// released when the file is closed or the process ends; where the system has
/// no file lock this is an error, never a lock that silently admits everyone.
fn try_lock_exclusive(file: &fs::File) -> std::io::Result<bool> {
    match file.try_lock() {
        Ok(()) => Ok(true),
        Err(fs::TryLockError::WouldBlock) => Ok(false),
        Err(fs::TryLockError::Error(e)) => Err(e),
    }
}

/// The writer lock of a state directory; released on drop.
#[derive(Debug)]
pub struct StoreLock {
    _file: fs::File,
}

/// `file` as a new document: [`HEADER`], then what differs from the
/// defaults, pairs as compact ranges (`"1:65535/udp" = "all"`). Connections
/// are written with their `if_index` when they have one (a file for `v6fw
/// replay`); a change through the daemon never writes indexes.
pub fn render(file: &PolicyFile) -> Result<String, FwError> {
    let mut document = DocumentMut::new();
    doc::apply(&mut document, &PolicyFile::default(), file, true)?;
    Ok(format!("{HEADER}{document}"))
}

/// Reads the TOML of a policy file, the engine's part and then the daemon's
/// tables; the error (toml's, with its span) is the first found. Nothing
/// beyond the TOML is checked: [`parse`] does the rest.
pub fn from_toml(text: &str) -> Result<PolicyFile, toml::de::Error> {
    let policy: Policy = toml::from_str(text)?;
    let tables: DaemonTables<LogSettings> = toml::from_str(text)?;
    Ok(PolicyFile {
        policy,
        logging: tables.logging,
    })
}

/// Parses the text of a policy file; errors name `path`, the line and column.
///
/// Strict: unknown keys and tables, a pair written twice in any spelling, and
/// misspelt values are refused (the error lists the valid keys or values);
/// `[logging]` is checked by [`check_log_settings`] as `v6fw log set` checks
/// it, against the file's directory as the state directory; a file with no
/// content at all is refused rather than read as an empty policy.
pub fn parse(path: &Path, text: &str) -> Result<PolicyFile, FwError> {
    parse_for(path, path.parent(), text)
}

/// [`parse`] for a file that will live in `state_dir` (`v6fw load`: the
/// file is read where it is, its `[logging]` is checked against the
/// daemon's state directory).
pub fn parse_for(path: &Path, state_dir: Option<&Path>, text: &str) -> Result<PolicyFile, FwError> {
    if text.trim().is_empty() {
        return Err(FwError::Fail(format!(
            "the policy file {} is empty ({} bytes): an interrupted copy or an editor may have truncated it; restore it from a backup, or remove it to start again with an empty policy (every port closed)",
            path.display(),
            text.len()
        )));
    }
    crate::fw::services::install();
    let file = from_toml(text).map_err(|e| {
        let at = e
            .span()
            .map(|s| {
                let (line, col) = line_col(text, s.start);
                format!(" at line {line}, column {col}")
            })
            .unwrap_or_default();
        FwError::Fail(format!(
            "the policy file {} is not valid{at}: {}; fix it there or move it away (v6fw never replaces it silently)",
            path.display(),
            e.message().trim()
        ))
    })?;
    for (key, conn) in &file.policy.connections {
        if *key != conn.id {
            return Err(FwError::Fail(format!(
                "the policy file {} is inconsistent: connection [connections.{key:?}] has id {:?}; make them equal",
                path.display(),
                conn.id
            )));
        }
    }
    check_log_settings(&file.logging, state_dir).map_err(|e| {
        FwError::Fail(format!(
            "the policy file {} has a bad [logging] value: {}; fix it there (the same rules as `v6fw log set`)",
            path.display(),
            e.message()
        ))
    })?;
    Ok(file)
}

/// 1-based line and column of byte `offset` in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[cfg(not(windows))]
fn create_dir(dir: &Path) -> Result<(), FwError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o755);
    }
    builder
        .create(dir)
        .map_err(|e| FwError::io("create the state directory", dir, e))
}

/// Windows: a new state directory gets an explicit ACL (SYSTEM and
/// Administrators full control, Users list it), not its parent's, so Users
/// cannot plant a `policy.toml` in it; an existing one is checked
/// (`winacl::create_state_dir`).
#[cfg(windows)]
fn create_dir(dir: &Path) -> Result<(), FwError> {
    crate::winacl::create_state_dir(dir)
        .map_err(|e| FwError::io("create the state directory", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_left_at_the_old_default_stops_the_start() {
        let t = tempfile::tempdir().unwrap();
        let (old, new) = (t.path().join("old"), t.path().join("new"));
        fs::create_dir_all(&old).unwrap();
        assert!(check_moved_from(&new, &old).is_ok(), "nothing to move");
        fs::write(old.join(POLICY_FILE), "").unwrap();
        let e = check_moved_from(&new, &old).unwrap_err().to_string();
        assert!(e.contains("mv ") && e.contains("--state-dir"), "{e}");
        fs::create_dir_all(&new).unwrap();
        fs::write(new.join(POLICY_FILE), "").unwrap();
        assert!(check_moved_from(&new, &old).is_ok(), "moved already");
    }

    #[test]
    fn the_logging_table_is_read_beside_the_policy_and_written_after_it() {
        let path = Path::new("/nowhere/policy.toml");
        let text =
            "[logging]\nconnections = true\nmax_size = 2048\n[globals]\n\"22/tcp\" = \"ssh\"\n";
        let file = parse(path, text).unwrap();
        assert!(file.logging.connections && !file.logging.dropped);
        assert_eq!(file.logging.max_size, 2048);
        assert_eq!(file.policy.globals.len(), 1);
        let rendered = render(&file).unwrap();
        assert!(rendered.starts_with(HEADER), "{rendered}");
        assert!(
            rendered.contains("[globals]\n\"22/tcp\" = \"ssh\"\n"),
            "{rendered}"
        );
        assert!(
            rendered.contains("[logging]\nconnections = true\nmax_size = 2048\n"),
            "{rendered}"
        );
        assert_eq!(parse(path, &rendered).unwrap(), file);
        // No `[logging]`: the defaults, which a new file leaves out.
        let bare = parse(path, "[globals]\n").unwrap();
        assert_eq!(bare, PolicyFile::default());
        assert_eq!(render(&bare).unwrap(), HEADER);
    }

    #[test]
    fn line_and_column() {
        assert_eq!(line_col("ab\ncd\nef", 0), (1, 1));
        assert_eq!(line_col("ab\ncd\nef", 4), (2, 2));
        assert_eq!(line_col("ab\ncd\nef", 100), (3, 3));
    }
}
