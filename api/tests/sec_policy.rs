//! Issue 13, the policy file: typos, duplicate spellings, empty files and bad
//! `[logging]` values are refused on load with an error that says where and
//! what to do, and the daemon does not start on such a file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use v6fw_api::fw::{FirewallManager, LogChange};
use v6fw_api::store::PolicyStore;

/// One bad file and the pieces its error must contain.
struct Bad {
    what: &'static str,
    text: &'static str,
    says: &'static [&'static str],
}

const BAD: &[Bad] = &[
    Bad {
        what: "unknown table",
        text: "[global]\n\"22/tcp\" = \"ssh\"\n",
        says: &["line 1", "unknown field `global`", "expected one of", "`globals`", "`logging`"],
    },
    Bad {
        what: "unknown top-level key",
        text: "stat = false\n",
        says: &["line 1, column 1", "unknown field `stat`", "`state`"],
    },
    Bad {
        what: "unknown key in a connection",
        text: "[connections.eth0]\nid = \"eth0\"\nenabeld = false\n",
        says: &["line 3", "unknown field `enabeld`", "`enabled`", "`ignored`"],
    },
    Bad {
        what: "unknown key in [logging]",
        text: "[globals]\n\"22/tcp\" = \"ssh\"\n[logging]\ndropped = true\n  droped = true\n",
        says: &["line 5, column 3", "unknown field `droped`", "`dropped`", "`max_size`"],
    },
    Bad {
        what: "misspelt value",
        text: "[icmp]\n128 = \"alow\"\n",
        says: &["line 2", "unknown variant `alow`", "`allow`", "`deny`"],
    },
    Bad {
        what: "misspelt boolean",
        text: "[logging]\ndropped = \"no\"\n",
        says: &["line 2, column 11", "invalid type", "boolean"],
    },
    Bad {
        what: "duplicate global with a leading zero",
        text: "[globals]\n\"22/tcp\" = \"ssh\"\n\"022/tcp\" = \"other\"\n",
        says: &["\"22/tcp\" and \"022/tcp\"", "written twice", "line 3"],
    },
    Bad {
        what: "duplicate global in upper case",
        text: "[globals]\n\"22/tcp\" = \"ssh\"\n\"22/TCP\" = \"other\"\n",
        says: &["\"22/tcp\" and \"22/TCP\"", "written twice", "line 3"],
    },
    Bad {
        what: "duplicate own pair of a connection",
        text: "[connections.eth0]\nid = \"eth0\"\n[connections.eth0.open]\n\"53/udp\" = \"dns\"\n\"53/17\" = \"dns2\"\n",
        says: &["\"53/udp\" and \"53/17\"", "written twice", "line 5"],
    },
    Bad {
        what: "duplicate ignored pair",
        text: "[connections.eth0]\nid = \"eth0\"\nignored = [\"443/tcp\", \" 443/tcp\"]\n",
        says: &["\"443/tcp\" and \" 443/tcp\"", "written twice", "line 3"],
    },
    Bad {
        what: "duplicate ICMPv6 type",
        text: "[icmp]\n128 = \"deny\"\n\"0128\" = \"allow\"\n",
        says: &["\"0128\"", "\"128\"", "written twice"],
    },
    Bad {
        what: "empty file",
        text: "",
        says: &["is empty (0 bytes)", "restore it from a backup", "remove it"],
    },
    Bad {
        what: "blank file",
        text: "\n  \n",
        says: &["is empty (4 bytes)", "restore it from a backup"],
    },
    Bad {
        what: "size cap 0",
        text: "[logging]\nmax_size = 0\n",
        says: &["bad [logging] value", "0 bytes is not valid", "1024 bytes (1KiB)"],
    },
    Bad {
        what: "relative log path",
        text: "[logging]\npath = \"relative.log\"\n",
        says: &["bad [logging] value", "\"relative.log\" is not absolute"],
    },
    Bad {
        what: "log path through .. onto the policy file",
        text: "[logging]\npath = '@DIR@/../@BASE@/policy.toml'\n",
        says: &["bad [logging] value", "v6fw's own file", "choose another log file"],
    },
];

/// Writes `text` (with `@DIR@`/`@BASE@` filled in) as the policy of a fresh
/// state directory and returns the error loading it gives.
fn load_error(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let base = dir
        .path()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let text = text
        .replace("@DIR@", dir.path().to_str().unwrap())
        .replace("@BASE@", &base);
    let store = PolicyStore::new(dir.path());
    std::fs::write(store.path(), &text).unwrap();
    let err = store
        .load()
        .expect_err("a bad policy file must not load")
        .to_string();
    (dir, err)
}

#[test]
fn bad_policy_files_are_refused_with_what_and_where() {
    for bad in BAD {
        let (dir, err) = load_error(bad.text);
        let file = dir.path().join("policy.toml");
        assert!(
            err.contains(&file.display().to_string()),
            "{}: the error names the file: {err}",
            bad.what
        );
        for piece in bad.says {
            assert!(
                err.contains(piece),
                "{}: {piece:?} missing in: {err}",
                bad.what
            );
        }
    }
}

#[test]
fn a_bad_file_is_left_as_it_was() {
    for bad in BAD {
        let (dir, _) = load_error(bad.text);
        let before = std::fs::read(dir.path().join("policy.toml")).unwrap();
        assert!(
            FirewallManager::open(dir.path()).is_err(),
            "{}: a manager must not open a bad file",
            bad.what
        );
        let after = std::fs::read(dir.path().join("policy.toml")).unwrap();
        assert_eq!(
            before, after,
            "{}: the file must not be rewritten",
            bad.what
        );
    }
}

#[test]
fn good_files_still_load() {
    let dir = tempfile::tempdir().unwrap();
    let store = PolicyStore::new(dir.path());
    let text = format!(
        "# only a comment and a global\n[globals]\n\"22/tcp\" = \"ssh\"\n\"53/udp\" = \"dns\"\n[icmp]\n128 = \"deny\"\n[logging]\ndropped = true\nmax_size = 1024\npath = '{}/v6fw.log'\n",
        dir.path().display()
    );
    std::fs::write(store.path(), text).unwrap();
    let p = store.load().unwrap().unwrap();
    assert_eq!(p.policy.globals.len(), 2);
    assert!(p.logging.dropped);
    // What v6fw writes, it reads back.
    let mgr = FirewallManager::open(dir.path()).unwrap();
    mgr.open_global_port(8080, v6fw_engine::Protocol::Tcp, "web")
        .unwrap();
    drop(mgr);
    assert_eq!(store.load().unwrap().unwrap().policy.globals.len(), 3);
}

#[test]
fn an_unreadable_file_says_how_to_recover() {
    let dir = tempfile::tempdir().unwrap();
    let store = PolicyStore::new(dir.path());
    // A directory where the file should be: unreadable as a file even for root.
    std::fs::create_dir(store.path()).unwrap();
    let err = store.load().unwrap_err().to_string();
    assert!(err.contains("cannot read the policy file"), "{err}");
    assert!(err.contains("restore it from a backup"), "{err}");
    std::fs::remove_dir(store.path()).unwrap();
    std::fs::write(store.path(), b"[logging]\ndropped = \xff\n").unwrap();
    let err = store.load().unwrap_err().to_string();
    assert!(err.contains("is not UTF-8"), "{err}");
}

#[test]
fn log_set_and_load_refuse_the_same_values() {
    let dir = tempfile::tempdir().unwrap();
    let mgr = FirewallManager::open(dir.path()).unwrap();
    let dotdot = format!(
        "{}/../{}/policy.toml",
        dir.path().display(),
        dir.path().file_name().unwrap().to_str().unwrap()
    );
    for (change, says) in [
        (
            LogChange {
                max_size: Some(0),
                ..LogChange::default()
            },
            "0 bytes is not valid",
        ),
        (
            LogChange {
                path: Some(Some("relative.log".into())),
                ..LogChange::default()
            },
            "is not absolute",
        ),
        (
            LogChange {
                path: Some(Some(dotdot.clone())),
                ..LogChange::default()
            },
            "v6fw's own file",
        ),
    ] {
        let err = mgr.set_log_settings(&change).unwrap_err().to_string();
        assert!(err.contains(says), "{err}");
    }
    assert_eq!(mgr.log_settings(), v6fw_api::log::LogSettings::default());
}

/// `v6fw run` stops before filtering anything when the policy file is bad
/// (on Windows before it loads WinDivert.dll, which the tests do not have).
#[cfg(any(target_os = "linux", windows))]
#[test]
fn the_daemon_refuses_to_start_on_a_bad_file() {
    let (dir, _) = load_error("[global]\n\"22/tcp\" = \"ssh\"\n");
    #[cfg(unix)]
    let socket = dir.path().join("control.sock");
    #[cfg(windows)]
    let socket = std::path::PathBuf::from(format!(
        r"\\.\pipe\v6fw-bad-policy-{}",
        dir.path().file_name().unwrap().to_string_lossy()
    ));
    // --no-rules: even if it did start, nothing would be diverted; and it is
    // killed if it has not stopped within 20 s.
    let mut run = std::process::Command::new(env!("CARGO_BIN_EXE_v6fw"));
    run.arg("run")
        .arg("--state-dir")
        .arg(dir.path())
        .arg("--socket")
        .arg(&socket);
    #[cfg(unix)]
    run.arg("--no-rules");
    let mut child = run
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("v6fw run did not stop on a bad policy file");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "exit {:?}: {err}", out.status);
    // Without root the daemon stops earlier, at its privilege check.
    if common::is_root() {
        assert!(err.contains("unknown field `global`"), "{err}");
        assert!(err.contains("line 1"), "{err}");
    }
    assert!(!socket.exists(), "nothing serves {}", socket.display());
}

#[cfg(unix)]
#[test]
fn a_state_directory_others_can_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let err = FirewallManager::open(&state)
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("the state directory is writable by everyone"),
        "{err}"
    );
    assert!(err.contains("--state-dir"), "{err}");
    assert!(!state.join("policy.toml").exists(), "nothing written");
}

/// A file an editor writes in place (truncate, then the text in two
/// writes with a pause between) is never read half: the first half alone
/// is a valid policy with fewer pairs, which a reload must not publish.
#[test]
fn a_file_being_written_in_place_is_read_whole() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let store = PolicyStore::new(dir.path());
    let first = "[globals]\n\"22/tcp\" = \"ssh\"\n";
    let second = "\"80/tcp\" = \"web\"\n";
    let mut f = std::fs::File::create(store.path()).unwrap();
    f.write_all(first.as_bytes()).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let writer = std::thread::spawn(move || {
        // The reader has started; then the rest, well within the settling time.
        rx.recv().unwrap();
        std::thread::sleep(v6fw_api::store::SETTLE / 4);
        f.write_all(second.as_bytes()).unwrap();
    });
    tx.send(()).unwrap();
    let read = store.load().unwrap().unwrap();
    writer.join().unwrap();
    assert_eq!(
        read.policy.globals.len(),
        2,
        "the whole file, not its first half"
    );
}
