//! `v6fw ports` with scopes, on a state directory with no daemon: `--from`
//! prefixes, how `ports list` and its JSON show them, bad prefixes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::Path;
use std::process::{Command, Output};

/// `v6fw ARGS --socket (none) --state-dir DIR`.
fn v6fw(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_v6fw"))
        .args(args)
        .arg("--socket")
        .arg(dir.join("no-daemon.sock"))
        .arg("--state-dir")
        .arg(dir)
        .output()
        .expect("run v6fw")
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn fails(o: &Output) -> String {
    assert!(
        !o.status.success(),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8(o.stderr.clone()).unwrap()
}

#[test]
fn open_from_prefixes_then_list_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = ok(&v6fw(
        d,
        &[
            "ports",
            "open",
            "22/tcp",
            "--name",
            "ssh",
            "--from",
            "fd00::/8",
            "--from",
            "2001:db8::/32",
        ],
    ));
    assert!(out.starts_with("opened 22/tcp globally"), "{out}");
    let again = ok(&v6fw(
        d,
        &[
            "ports",
            "open",
            "22/tcp",
            "--from",
            "2001:db8::/32",
            "--from",
            "fd00::/8",
        ],
    ));
    assert!(again.contains("nothing changed"), "{again}");
    let list = ok(&v6fw(d, &["ports", "list", "--global"]));
    assert!(
        list.contains("22/tcp") && list.contains("from 2001:db8::/32,fd00::/8"),
        "{list}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(&v6fw(d, &["ports", "list", "--global", "--json"]))).unwrap();
    assert_eq!(
        json["global"][0]["from"],
        serde_json::json!(["2001:db8::/32", "fd00::/8"])
    );
    // The file says it with `from`.
    let file = std::fs::read_to_string(d.join("policy.toml")).unwrap();
    assert!(file.contains("from = ["), "{file}");
    // Reopening without --from lets every source in again: a change.
    let widened = ok(&v6fw(d, &["ports", "open", "22/tcp"]));
    assert!(widened.starts_with("opened 22/tcp"), "{widened}");
    let list = ok(&v6fw(d, &["ports", "list", "--global"]));
    assert!(list.contains("from any") && list.contains("ssh"), "{list}");
}

#[test]
fn bad_prefixes_are_invalid_arguments_naming_the_text() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for bad in ["fd00::/129", "10.0.0.0/8", "fd00::/x", "nonsense"] {
        let err = fails(&v6fw(d, &["ports", "open", "22/tcp", "--from", bad]));
        assert!(
            err.contains(&format!("{bad:?} is not an IPv6 prefix")),
            "{err}"
        );
        assert!(err.contains("E_INVALIDARG"), "{err}");
    }
    let list = ok(&v6fw(d, &["ports", "list", "--global"]));
    assert!(list.contains("(none)"), "nothing was opened: {list}");
}

/// Issue 29: `fd00::1/8` was silently widened to `fd00::/8`; it is an error
/// naming the network meant, from the command line, a policy file and
/// `check`.
#[test]
fn prefixes_with_host_bits_are_errors_naming_the_network() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let err = fails(&v6fw(
        d,
        &["ports", "open", "22/tcp", "--from", "fd00::1/8"],
    ));
    assert!(
        err.contains("\"fd00::1/8\" has bits set past its length: the network is fd00::/8"),
        "{err}"
    );
    assert!(err.contains("E_INVALIDARG"), "{err}");
    let list = ok(&v6fw(d, &["ports", "list", "--global"]));
    assert!(list.contains("(none)"), "nothing was opened: {list}");
    let file = d.join("hostbits.toml");
    std::fs::write(
        &file,
        "[globals]\n\"22/tcp\" = { name = \"ssh\", from = [\"2001:db8::5/32\"] }\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_v6fw"))
        .args(["check", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            ":2:35: \"2001:db8::5/32\" has bits set past its length: the network is 2001:db8::/32"
        ),
        "{err}"
    );
}

#[test]
fn ranges_and_service_names() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = ok(&v6fw(
        d,
        &["ports", "open", "6000:6007/tcp", "--name", "x11"],
    ));
    assert!(out.starts_with("opened 6000:6007/tcp globally"), "{out}");
    let out = ok(&v6fw(d, &["ports", "open", "ssh"]));
    assert!(out.starts_with("opened 22/tcp globally"), "{out}");
    let out = ok(&v6fw(d, &["ports", "open", "domain/udp"]));
    assert!(out.starts_with("opened 53/udp globally"), "{out}");
    let list = ok(&v6fw(d, &["ports", "list", "--global"]));
    let rows: Vec<&str> = list.lines().map(str::trim).collect();
    assert!(
        rows.iter().any(|r| r.starts_with("6000:6007/tcp")),
        "{list}"
    );
    assert!(rows.iter().any(|r| r.starts_with("22/tcp")), "{list}");
    assert!(rows.iter().any(|r| r.starts_with("53/udp")), "{list}");
    let json: serde_json::Value =
        serde_json::from_str(&ok(&v6fw(d, &["ports", "list", "--global", "--json"]))).unwrap();
    assert_eq!(
        json["global"].as_array().unwrap().len(),
        10,
        "a range opens each pair"
    );
    // Closing part of the range splits it in the listing.
    ok(&v6fw(d, &["ports", "close", "6003:6004/tcp"]));
    let list = ok(&v6fw(d, &["ports", "list", "--global"]));
    assert!(
        list.contains("6000:6002/tcp") && list.contains("6005:6007/tcp"),
        "{list}"
    );
    // A policy file may use them too.
    let file = d.join("other");
    std::fs::create_dir(&file).unwrap();
    std::fs::write(
        file.join("policy.toml"),
        "[globals]\n\"ssh\" = \"s\"\n\"8000:8002/udp\" = \"u\"\n",
    )
    .unwrap();
    let list = ok(&v6fw(&file, &["ports", "list", "--global"]));
    assert!(
        list.contains("22/tcp") && list.contains("8000:8002/udp"),
        "{list}"
    );
}

#[test]
fn bad_ranges_and_unknown_names() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (bad, says) in [
        ("8:7/tcp", "\"8:7/tcp\" is backwards"),
        ("0:5/tcp", "port 0 is not valid"),
        ("1:70000/tcp", "port 70000 is not valid"),
        ("nosuchservice", "no service \"nosuchservice\""),
        ("ssh/sctp", "protocol sctp is not valid"),
    ] {
        let err = fails(&v6fw(d, &["ports", "open", bad]));
        assert!(
            err.contains(says) && err.contains("E_INVALIDARG"),
            "{bad}: {err}"
        );
    }
    let list = ok(&v6fw(d, &["ports", "list", "--global"]));
    assert!(list.contains("(none)"), "nothing was opened: {list}");
}

#[test]
fn ignoring_a_pair_that_is_not_global_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("policy.toml"),
        "[globals]\n\"443/tcp\" = \"https\"\n\n[connections.eth9]\nid = \"eth9\"\n",
    )
    .unwrap();
    let out = v6fw(
        d,
        &["ports", "ignore-global", "80/tcp", "--connection", "eth9"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("note: 80/tcp is not a global pair"), "{err}");
    let out = v6fw(
        d,
        &["ports", "ignore-global", "443/tcp", "--connection", "eth9"],
    );
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("note:"));
}

const BAD: &str = r#"[globals]
"22/tcp" = { name = "ssh", from = ["fd00::/200"] }
"8:7/tcp" = "x"

[connections.eth0]
id = "eth0"
enabeld = true
[logging]
droped = true

[globl]
x = 1
"#;

const GOOD: &str = r#"[globals]
"ssh" = { name = "ssh", from = ["fd00::/8"] }
"6000:6003/tcp" = "x"

[connections.eth0]
id = "eth0"

[connections.eth0.open]
"53/udp" = "dns"
"#;

#[test]
fn check_lists_every_error_with_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, BAD).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_v6fw"))
        .args(["check", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    let f = file.display();
    for want in [
        format!("{f}:2:35: \"fd00::/200\" is not an IPv6 prefix"),
        format!("{f}:3:1: \"8:7/tcp\" is backwards"),
        format!("{f}:7:1: unknown field `enabeld`"),
        format!("{f}:9:1: unknown field `droped`"),
        format!("{f}:11:2: unknown field `globl`"),
        "(5 errors)".to_string(),
    ] {
        assert!(err.contains(&want), "{want} in:\n{err}");
    }
    // In the file's order, though `[logging]` is read after the rest.
    let at = |m: &str| err.find(m).unwrap();
    assert!(at("`droped`") < at("`globl`"), "{err}");
}

#[test]
fn check_prints_the_effective_sets_of_a_good_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("good.toml");
    std::fs::write(&file, GOOD).unwrap();
    let run = |json: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_v6fw"));
        cmd.arg("check").arg(&file);
        if json {
            cmd.arg("--json");
        }
        ok(&cmd.output().unwrap())
    };
    let text = run(false);
    assert!(text.contains("is valid"), "{text}");
    let eth0 = text.split("connection eth0:").nth(1).unwrap();
    for want in ["22/tcp", "from fd00::/8", "6000:6003/tcp", "53/udp", "own"] {
        assert!(eth0.contains(want), "{want}: {text}");
    }
    let v: serde_json::Value = serde_json::from_str(&run(true)).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["global"].as_array().unwrap().len(), 5);
    assert_eq!(v["connections"]["eth0"].as_array().unwrap().len(), 6);
}

#[test]
fn load_without_a_daemon_replaces_the_file_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&v6fw(d, &["ports", "open", "443/tcp"]));
    let good = d.join("good.toml");
    std::fs::write(&good, GOOD).unwrap();
    let bad = d.join("bad.toml");
    std::fs::write(&bad, BAD).unwrap();
    let before = std::fs::read_to_string(d.join("policy.toml")).unwrap();
    let err = fails(&v6fw(d, &["load", bad.to_str().unwrap()]));
    assert!(err.contains("is not valid at line 2, column 35"), "{err}");
    assert!(err.contains("v6fw check"), "{err}");
    let after = std::fs::read_to_string(d.join("policy.toml")).unwrap();
    assert_eq!(before, after, "a refused file changes nothing");
    let out = ok(&v6fw(d, &["load", good.to_str().unwrap()]));
    assert!(
        out.contains("the policy was replaced (no daemon running"),
        "{out}"
    );
    let list = ok(&v6fw(d, &["ports", "list", "--global"]));
    assert!(
        list.contains("6000:6003/tcp") && !list.contains("443/tcp"),
        "{list}"
    );
    let again = ok(&v6fw(d, &["load", good.to_str().unwrap()]));
    assert!(again.contains("nothing changed"), "{again}");
}

#[test]
fn reload_without_a_daemon_names_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let err = fails(&v6fw(dir.path(), &["reload"]));
    let sock = dir.path().join("no-daemon.sock");
    assert!(
        err.contains(&format!("no daemon answers at {}", sock.display())),
        "{err}"
    );
}
