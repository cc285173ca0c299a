//! Man pages and shell completions are generated from the clap definitions:
//! every subcommand that `--help` lists has a page, and the completion
//! scripts offer the subcommands; docs/spec.md names every reason.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::path::Path;
use std::process::Command;

use common::succeeded;

fn v6fw(args: &[&str]) -> String {
    let out = succeeded(
        Command::new(env!("CARGO_BIN_EXE_v6fw"))
            .args(args)
            .output()
            .unwrap(),
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The subcommands `v6fw <path> --help` lists under "Commands:" (without `help`).
fn subcommands(path: &[&str]) -> Vec<String> {
    let mut args = path.to_vec();
    args.push("--help");
    let help = v6fw(&args);
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

/// Every command path under `path`, found by walking `--help`.
fn command_tree(path: Vec<String>, out: &mut Vec<Vec<String>>) {
    let refs: Vec<&str> = path.iter().map(String::as_str).collect();
    for sub in subcommands(&refs) {
        let mut child = path.clone();
        child.push(sub);
        out.push(child.clone());
        command_tree(child, out);
    }
}

#[test]
fn every_subcommand_has_a_man_page() {
    let dir = tempfile::tempdir().unwrap();
    let listed = v6fw(&["man", dir.path().to_str().unwrap()]);
    let mut tree = Vec::new();
    command_tree(Vec::new(), &mut tree);
    assert!(tree.len() > 10, "walked too few commands: {tree:?}");
    for required in [["run"], ["ports"], ["replay"]] {
        assert!(
            tree.iter().any(|p| p == &required),
            "{required:?} missing from {tree:?}"
        );
    }
    let pages = std::iter::once("v6fw".to_string())
        .chain(tree.iter().map(|p| format!("v6fw-{}", p.join("-"))));
    for page in pages {
        let file = dir.path().join(format!("{page}.1"));
        let text =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(text.contains(".TH"), "{page}: not a man page");
        assert!(
            text.contains(&page),
            "{page}: page does not name its command"
        );
        assert!(
            listed.contains(&*file.to_string_lossy()),
            "{page}: not listed by `v6fw man`, which printed:\n{listed}"
        );
    }
    // `ports open` documents its options.
    let open = std::fs::read_to_string(dir.path().join("v6fw-ports-open.1")).unwrap();
    assert!(open.contains("connection"), "{open}");
}

#[test]
fn bash_completion_offers_the_main_subcommands() {
    let script = v6fw(&["completions", "bash"]);
    assert!(
        script.contains("complete -F _v6fw"),
        "not a bash completion script"
    );
    // The words bash offers after `v6fw `.
    let top = script
        .lines()
        .find(|l| l.trim_start().starts_with("opts=\"") && l.contains("replay"))
        .expect("no top-level word list");
    for word in ["run", "ports", "replay", "stats", "completions"] {
        assert!(
            top.split(['"', ' ']).any(|w| w == word),
            "{word} not offered: {top}"
        );
    }
    if cfg!(unix) && Path::new("/bin/bash").exists() {
        // The script loads in a real bash and completes `v6fw re` to `replay`.
        let probe = format!(
            "{script}\nCOMP_WORDS=(v6fw re); COMP_CWORD=1; _v6fw v6fw re v6fw; printf '%s\\n' \"${{COMPREPLY[@]}}\""
        );
        let out = succeeded(
            Command::new("/bin/bash")
                .arg("-c")
                .arg(probe)
                .output()
                .unwrap(),
        );
        let words = String::from_utf8(out.stdout).unwrap();
        assert!(
            words.lines().any(|w| w == "replay"),
            "bash completed: {words:?}"
        );
    }
}

#[test]
fn zsh_and_fish_completions_are_generated() {
    assert!(v6fw(&["completions", "zsh"]).contains("#compdef v6fw"));
    let fish = v6fw(&["completions", "fish"]);
    assert!(fish.contains("complete -c v6fw"), "{fish}");
    assert!(fish.contains("replay"));
}

#[test]
fn unknown_shell_is_an_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_v6fw"))
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bash"));
}

/// docs/spec.md, the decision contract in the repository, names every
/// reason of `Reason` in backticks, and lists the replay summary's order as
/// `Reason::ALL` has it.
#[test]
fn docs_spec_names_every_reason_in_summary_order() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/spec.md");
    let text = std::fs::read_to_string(&path).unwrap();
    for r in v6fw_engine::Reason::ALL {
        assert!(
            text.contains(&format!("`{r}`")),
            "docs/spec.md does not name `{r}`"
        );
    }
    let order = text
        .split("a count per reason in this order:")
        .nth(1)
        .expect("docs/spec.md lists the summary's order");
    let listed: Vec<&str> = order
        .split('`')
        .skip(1)
        .step_by(2)
        .take(v6fw_engine::Reason::COUNT)
        .collect();
    let all: Vec<&str> = v6fw_engine::Reason::ALL
        .iter()
        .map(|r| r.as_str())
        .collect();
    assert_eq!(listed, all);
}
