use super::*;
use clap::Parser;

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    run: Args,
}

fn parse(args: &[&str]) -> Result<Args, String> {
    let mut all = vec!["v6fw-run"];
    all.extend_from_slice(args);
    Cli::try_parse_from(all)
        .map(|c| c.run)
        .map_err(|e| e.to_string())
}

#[test]
fn every_numeric_option_is_range_checked() {
    for bad in [
        &["--queue-len", "0"][..],
        &["--queue-len", "1048577"],
        &["--copy-range", "63"],
        &["--copy-range", "65536"],
        &["--batch", "0"],
        &["--batch", "256"],
        &["--stats-interval", "86401"],
        &["--mark-bit", "32"],
        &["--queues", "3-1"],
        &["--queues", "0-64"],
        &["--queues", "65536"],
    ] {
        let err = parse(bad).expect_err(&format!("{bad:?} was accepted"));
        assert!(err.contains(bad[0]), "{bad:?}: {err}");
    }
    let ok = parse(&["--queue-len", "1", "--batch", "255", "--mark-bit", "0"]).unwrap();
    assert_eq!((ok.queue_len, ok.batch, ok.mark_bit), (1, 255, Some(0)));
    assert!(parse(&["--fail-open", "--fail-closed"]).is_err());
    assert!(parse(&["--offload", "everything"]).is_err());
    assert!(
        parse(&["--offload", "established", "--no-rules"]).is_err(),
        "offload is a rule: with --no-rules there is none"
    );
    let err = check_args(&parse(&["--offload", "established", "--no-state"]).unwrap())
        .expect_err("--offload with --no-state would let replies in");
    assert!(err.to_string().contains("--no-state"), "{err}");
    assert!(check_args(&parse(&["--no-state"]).unwrap()).is_ok());
    let on = parse(&["--offload", "established"]).unwrap();
    assert!(check_args(&on).is_ok());
    assert_eq!(on.offload, Some(Offload::Established));
    assert_eq!(parse(&[]).unwrap().offload, None, "default off");
}

#[test]
#[cfg(target_os = "linux")] // the mark is NFQUEUE's
fn the_accept_mark_follows_the_rules() {
    let mark = |a: &[&str]| backends::accept_mark(&parse(a).unwrap());
    assert_eq!(mark(&[]), 0, "NF_ACCEPT: no second traversal");
    assert_eq!(mark(&["--no-rules"]), 0);
    assert_eq!(mark(&["--no-rules", "--mark-bit", "3"]), 8);
    assert_eq!(mark(&["--mark-bit", "21"]), 0x20_0000);
}

fn manager_in(dir: &std::path::Path) -> Arc<FirewallManager> {
    FirewallManager::open(&dir.join("state")).unwrap()
}

#[test]
fn offload_is_refused_over_a_policy_without_state() {
    let dir = tempfile::tempdir().unwrap();
    let mgr = manager_in(dir.path());
    let offload = parse(&["--offload", "established"]).unwrap();
    assert!(
        check_offload_state(&offload, &mgr).is_ok(),
        "state is on by default"
    );
    mgr.set_state_tracking(false).unwrap();
    let err = check_offload_state(&offload, &mgr).expect_err("state off in the policy");
    assert!(err.to_string().contains("needs state tracking"), "{err}");
    assert!(check_offload_state(&parse(&[]).unwrap(), &mgr).is_ok());
}

#[test]
fn sighup_reload_publishes_a_good_file_and_refuses_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let mgr = manager_in(dir.path());
    let store = mgr.store().unwrap();
    let mut edited = store.load().unwrap().unwrap_or_default();
    edited.policy.open_global(
        PortPair::new(9090, v6fw_engine::Protocol::Tcp).unwrap(),
        "t",
    );
    std::fs::write(store.path(), v6fw_api::store::render(&edited).unwrap()).unwrap();
    reload(&mgr).unwrap();
    let open = |m: &FirewallManager| {
        m.is_global_port_open(9090, v6fw_engine::Protocol::Tcp)
            .unwrap()
    };
    assert!(open(&mgr), "the edited file took effect");
    std::fs::write(store.path(), "this is [not toml").unwrap();
    let err = reload(&mgr).unwrap_err().to_string();
    assert!(err.contains("line 1"), "{err}");
    assert!(open(&mgr), "a bad file leaves the running policy");
    std::fs::remove_file(store.path()).unwrap();
    assert!(reload(&mgr).unwrap_err().to_string().contains("is gone"));
    assert!(open(&mgr));
}
