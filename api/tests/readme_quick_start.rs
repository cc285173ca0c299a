//! README's quick start is true: every command of every `sh` block marked
//! `<!-- quick start ... -->` (the two commands at the top of README among
//! them) runs and succeeds.
//!
//! `cargo run --release -- ARGS` runs this build's `v6fw` with ARGS (the
//! same program; `--release` only makes it faster). `cargo test ...` is the
//! command that runs this very test, so it is not run again from here: CI
//! runs README's test command itself (.ci/run takes it from the same block).
//!
//! Not on Windows: README's quick start is for "a fresh Linux machine" and its
//! commands are run by `sh`; the Windows build is described in its own section.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The commands of every `sh` block that follows a quick-start marker.
fn quick_start(readme: &str) -> Vec<String> {
    let mut commands = Vec::new();
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        if !line.trim_start().starts_with("<!-- quick start") {
            continue;
        }
        assert_eq!(
            lines.next().map(str::trim),
            Some("```sh"),
            "a quick-start marker must be right above a ```sh block"
        );
        for l in lines.by_ref() {
            if l.trim() == "```" {
                break;
            }
            if !l.trim().is_empty() && !l.trim_start().starts_with('#') {
                commands.push(l.trim().to_string());
            }
        }
    }
    commands
}

#[test]
fn every_quick_start_command_of_readme_succeeds() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let commands = quick_start(&readme);
    // The two at the top: the sample replay, then the test command.
    assert!(
        commands.len() >= 2,
        "README's quick start has the sample replay and the test command: {commands:?}"
    );
    assert!(commands[0].starts_with("cargo run --release -- replay samples/sample.pcap"));
    assert!(commands[1].starts_with("cargo test"));
    let bin = env!("CARGO_BIN_EXE_v6fw");
    let mut ran = 0;
    for cmd in &commands {
        if cmd.starts_with("cargo test") {
            eprintln!("not run from inside `cargo test`: {cmd} (CI runs it)");
            continue;
        }
        let line = match cmd.strip_prefix("cargo run --release -- ") {
            Some(args) => format!("{bin} {args}"),
            None => cmd.clone(),
        };
        let out = Command::new("sh")
            .arg("-c")
            .arg(&line)
            .current_dir(root())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "README's `{cmd}` failed ({:?}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.stdout.is_empty(), "`{cmd}` printed nothing");
        if ran == 0 {
            // CI greps the first command's output for this line.
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.lines().any(|l| l == "packets   28"), "{text}");
        }
        ran += 1;
    }
    assert!(ran >= 1);
}

#[test]
fn only_the_commands_of_marked_blocks_are_taken() {
    let text = "intro\n<!-- quick start -->\n```sh\nfalse\n# a comment\n\ntrue\n```\n```sh\nnot-this\n```\n";
    assert_eq!(quick_start(text), ["false", "true"]);
}
