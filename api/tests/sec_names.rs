//! Issue 29, names with control characters: a pair or connection name
//! holding `ESC ]0;...BEL` (which sets a terminal's title; other sequences do
//! worse) reached root's terminal raw through `ports list`. It is now refused
//! wherever it enters (the control socket, a policy file, `v6fw load`,
//! `v6fw check`), and an interface whose name has one is left out of the
//! connections.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::Path;
use std::process::{Command, Output};

use v6fw_api::control::client::Client;
use v6fw_api::control::protocol::{ProtoArg, Request};

mod common;

use common::Daemon;

/// The escape sequence that retitles a terminal.
const TITLE: &str = "\u{1b}]0;owned\u{7}";

fn v6fw(state: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_v6fw"))
        .args(args)
        .args(["--socket", "/nonexistent/v6fw.sock", "--state-dir"])
        .arg(state)
        .output()
        .unwrap()
}

/// stderr of a failed command, checked to hold no raw escape.
fn refused(out: &Output) -> String {
    assert!(!out.status.success(), "{out:?}");
    assert!(
        !out.stdout.contains(&0x1b) && !out.stderr.contains(&0x1b),
        "a raw ESC was printed: {out:?}"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_command_line_and_the_control_socket_refuse_control_characters() {
    let dir = tempfile::tempdir().unwrap();
    let name = format!("web{TITLE}");
    let err = refused(&v6fw(
        dir.path(),
        &["ports", "open", "80/tcp", "--name", &name],
    ));
    assert!(
        err.contains("E_INVALIDARG") && err.contains("control characters"),
        "{err}"
    );
    assert!(
        err.contains("\\u{1b}]0;owned\\u{7}"),
        "shown escaped: {err}"
    );

    // The daemon's socket: an open, and a whole policy sent with `load`.
    let d = Daemon::reachable("v6fw-sec-names-");
    let mut c = Client::connect(&d.socket).unwrap().unwrap();
    let open = Request::OpenPort {
        connection: None,
        port: 80,
        protocol: ProtoArg::Name("tcp".into()),
        name: name.clone(),
        from: Vec::new(),
        last_port: None,
    };
    let e = c.call(&open).unwrap_err();
    assert!(e.message().contains("control characters"), "{e}");
    // The name as a TOML string.
    let name = "\"web\\u001b]0;owned\\u0007\"";
    for policy in [
        format!("[globals]\n\"80/tcp\" = {name}\n"),
        format!("[globals]\n\"80/tcp\" = {{ name = {name}, from = [\"fd00::/8\"] }}\n"),
        format!("[connections.eth0]\nid = \"eth0\"\nname = {name}\n"),
        "[connections.\"e\\u001b1\"]\nid = \"e\\u001b1\"\n".to_string(),
    ] {
        let e = c
            .call(&Request::Load {
                policy: policy.clone(),
                source: String::new(),
            })
            .unwrap_err();
        assert!(
            e.message().contains("control characters") && !e.message().contains('\u{1b}'),
            "{policy}: {e}"
        );
    }
    assert!(d.mgr.policy().globals.is_empty(), "nothing was opened");
}

#[test]
fn a_policy_file_with_control_characters_is_refused_with_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("titled.toml");
    std::fs::write(
        &file,
        "[globals]\n\"22/tcp\" = \"ssh\"\n\"80/tcp\" = \"web\\u001b]0;owned\\u0007\"\n",
    )
    .unwrap();
    // check: the line and column, the name escaped.
    let out = Command::new(env!("CARGO_BIN_EXE_v6fw"))
        .arg("check")
        .arg(&file)
        .output()
        .unwrap();
    let err = refused(&out);
    assert!(
        err.contains(":3:12: the name \"web\\u{1b}]0;owned\\u{7}\" contains control characters"),
        "{err}"
    );
    // load, without a daemon: refused, nothing written.
    let state = dir.path().join("state");
    let err = refused(&v6fw(&state, &["load", file.to_str().unwrap()]));
    assert!(err.contains("control characters"), "{err}");
    assert!(!state.join("policy.toml").exists());
    // The state directory's own file: every command that reads it refuses.
    std::fs::create_dir(&state).unwrap();
    std::fs::copy(&file, state.join("policy.toml")).unwrap();
    let err = refused(&v6fw(&state, &["ports", "list"]));
    assert!(err.contains("control characters"), "{err}");
}

/// An interface named with an escape sequence (root, in a network namespace
/// of its own made with `unshare --net --mount`, with its own /sys, all gone
/// when the command ends): left
/// out of the connections (the daemon's log warns, the name escaped; the
/// command line has no log), nothing printed raw.
#[test]
#[cfg(target_os = "linux")]
fn an_interface_with_control_characters_is_left_out_and_shown_escaped() {
    if !common::root_or_skip("an_interface_with_control_characters_is_left_out_and_shown_escaped") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = format!(
        "mount -t sysfs sysfs /sys && ip link add \"$(printf 'x\\033]0;owned\\007')\" type veth peer name okay0 && ip link set okay0 alias \"$(printf 'al\\033]0;owned\\007')\" && exec {} connections --json --socket /nonexistent/v6fw.sock --state-dir {}",
        env!("CARGO_BIN_EXE_v6fw"),
        dir.path().join("state").display()
    );
    let out = Command::new("unshare")
        .args(["--net", "--mount", "sh", "-c", &script])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        !out.stdout.contains(&0x1b) && !out.stderr.contains(&0x1b),
        "a raw ESC was printed: {out:?}"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = v["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"okay0") && ids.contains(&"lo"), "{ids:?}");
    assert_eq!(ids.len(), 2, "the escaped one is left out: {ids:?}");
    let okay = v["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "okay0")
        .unwrap();
    assert_eq!(
        okay["name"], "okay0",
        "a control-character alias is replaced"
    );
}
