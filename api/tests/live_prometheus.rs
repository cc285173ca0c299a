//! A real Prometheus (Debian's `prometheus`) scrapes `v6fw run --metrics`,
//! and its query API returns v6fw's series.
//!
//! In namespace FW (fd00::1), with a server on 8080 (open):
//!
//! 1. `v6fw run --metrics` serves on [::1]:9640;
//! 2. Prometheus, started in FW with its storage in the lab's scratch
//!    directory and its web port on [::1]:19090, scrapes it every second;
//! 3. `GET /api/v1/query` answers `up{job="v6fw"}` 1, `v6fw_build_info`,
//!    the open pairs (1), and, after a TCP exchange from PEER, accepted
//!    packets for `global_port`.
//!
//! Every wait is bounded; Prometheus is killed with the lab (it is one of
//! its children). Skips (passes with a note) without root, the tools or
//! `prometheus`; CI sets `V6FW_REQUIRE_LIVE=1` to make that a
//! failure.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::fs;
use std::process::Stdio;
use std::time::{Duration, Instant};

mod common;

use common::lab::{self, has, run_bounded, unavailable, Lab, FW_ADDR};

/// Prometheus's web port in FW (a namespace of this test's own).
const PROMETHEUS_PORT: u16 = 19090;

/// GETs a URL; prints the body, or `fail:<why>`.
const GET: &str = r#"
import sys, urllib.request
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=3).read().decode())
except OSError as e:
    print("fail:" + type(getattr(e, "reason", e)).__name__)
"#;

fn get(lab: &Lab, url: &str) -> String {
    let out = run_bounded(
        &mut lab.exec(&lab.net.fw, &["python3", "-c", GET, url]),
        Duration::from_secs(10),
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The result vector of the instant query `query`, or why there is none.
fn query(lab: &Lab, query: &str) -> Result<Vec<serde_json::Value>, String> {
    let encoded: String = query
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let url = format!("http://[::1]:{PROMETHEUS_PORT}/api/v1/query?query={encoded}");
    let body = get(lab, &url);
    let json: serde_json::Value = serde_json::from_str(&body).map_err(|_| body.clone())?;
    if json["status"] != "success" {
        return Err(body);
    }
    json["data"]["result"]
        .as_array()
        .cloned()
        .ok_or_else(|| body.clone())
}

/// Waits (at most `limit`) until `query` returns a sample for which `ok`
/// holds of its value; returns the samples.
fn wait_query(
    lab: &Lab,
    q: &str,
    limit: Duration,
    ok: impl Fn(f64) -> bool,
) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + limit;
    let mut last = String::new();
    while Instant::now() < deadline {
        match query(lab, q) {
            Ok(samples) => {
                let good = samples.iter().any(|s| {
                    s["value"][1]
                        .as_str()
                        .and_then(|v| v.parse::<f64>().ok())
                        .is_some_and(&ok)
                });
                if good {
                    return samples;
                }
                last = format!("{samples:?}");
            }
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("Prometheus did not answer `{q}` as expected within {limit:?}; last: {last}");
}

#[test]
fn prometheus_scrapes_the_endpoint() {
    if let Some(why) = unavailable() {
        return lab::skip("live_prometheus", &why);
    }
    if !has("prometheus", "--version") {
        return lab::skip(
            "live_prometheus",
            "`prometheus` is not installed (apt-get install prometheus)",
        );
    }
    let mut lab = match Lab::new("v6fwprm", env!("CARGO_BIN_EXE_v6fw")) {
        Ok(l) => l,
        Err(e) => return lab::skip("live_prometheus", &e),
    };
    let (fw, peer) = (lab.net.fw.clone(), lab.net.peer.clone());
    lab.server(&fw, "8080", "");
    let run = lab.start_run(&["--open", "8080/tcp", "--metrics", "--stats-interval", "0"]);

    // 1. It serves. (`promtool check metrics` is not used: it reads only
    // Prometheus's own text format, and refuses OpenMetrics' `info` type.)
    let dir = lab.net.dir.clone();
    let text = get(&lab, "http://[::1]:9640/metrics");
    assert!(text.contains("v6fw_build_info"), "{text}");

    // 2. Prometheus in FW, scraping every second.
    let config = dir.join("prometheus.yml");
    fs::write(
        &config,
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
         scrape_configs:\n  - job_name: v6fw\n    static_configs:\n      - targets: ['[::1]:9640']\n",
    )
    .unwrap();
    let storage = dir.join("prometheus-data");
    let listen = format!("--web.listen-address=[::1]:{PROMETHEUS_PORT}");
    let (config_arg, storage_arg) = (
        format!("--config.file={}", config.display()),
        format!("--storage.tsdb.path={}", storage.display()),
    );
    let prometheus = lab
        .exec(&fw, &["prometheus", &config_arg, &storage_arg, &listen])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(dir.join("prometheus.err")).unwrap())
        .spawn()
        .expect("start prometheus");
    lab.children.push(prometheus);

    // 3. Its query API has v6fw's series.
    let limit = Duration::from_secs(60);
    // `up` is 1 only for a scrape Prometheus could parse whole.
    wait_query(&lab, r#"up{job="v6fw"}"#, limit, |v| v == 1.0);
    wait_query(&lab, r#"scrape_samples_scraped{job="v6fw"}"#, limit, |v| {
        v >= 10.0
    });
    let info = wait_query(&lab, "v6fw_build_info", limit, |v| v == 1.0);
    assert!(info[0]["metric"]["version"].is_string(), "{info:?}");
    wait_query(&lab, r#"v6fw_open_pairs{scope="global"}"#, limit, |v| {
        v == 1.0
    });
    assert_eq!(lab.client(&peer, "tcp", FW_ADDR, 8080, 3.0), "ok");
    let accepted = wait_query(
        &lab,
        r#"sum(v6fw_packets_total{verdict="accept",reason="global_port"})"#,
        limit,
        |v| v >= 2.0,
    );
    assert_eq!(accepted.len(), 1, "{accepted:?}");
    let status = lab.stop_run(&run);
    assert!(status.success(), "{}", run.log());
}
