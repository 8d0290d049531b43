//! A flood of log lines over a real OpenSSH server: the console's inbox and
//! `shipdeck logs` keep the newest lines, drop the rest instead of queueing
//! them, and count exactly what they dropped.

mod support;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use shipdeck::config::Config;
use shipdeck::monitor::{HostKey, Monitor, MonitorEvent, MonitorState};
use support::*;

const HOST: HostKey = HostKey { env: 0, host: 0 };

/// A config following `shared/log/app.log` on the fleet's first host, the
/// console keeping `keep` lines a host.
fn config(root: &Path, fleet: &SshdFleet, keep: usize) -> std::path::PathBuf {
    let log_dir = fleet.deploy_to(0).join("shared/log");
    fs::create_dir_all(&log_dir).unwrap();
    fs::write(log_dir.join("app.log"), "before the flood\n").unwrap();
    let toml = format!(
        r#"[app]
name = "flood"
artifact = "dist"
deploy_to = "/unused"

[logs]
files = ["shared/log/app.log"]
buffer_lines = {keep}

[environments.production]
hosts = {hosts}

{ssh}
"#,
        hosts = fleet.hosts_array_of([0]),
        ssh = fleet.ssh_section(),
    );
    let path = root.join("shipdeck.toml");
    fs::write(&path, toml).unwrap();
    path
}

/// `n` numbered lines written to the host's log in one go.
fn flood(fleet: &SshdFleet, prefix: &str, n: usize) {
    let mut text = String::with_capacity(n * 16);
    for i in 0..n {
        text.push_str(&format!("{prefix} {i}\n"));
    }
    let path = fleet.deploy_to(0).join("shared/log/app.log");
    let mut f = fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// The number in `flood N`, if the text is a flood line.
fn flood_number(text: &str) -> Option<usize> {
    text.strip_prefix("flood ")?.parse().ok()
}

#[test]
fn the_console_inbox_keeps_the_newest_lines_of_a_flood_and_counts_the_rest() {
    let Some(fleet) = SshdFleet::start(1) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let keep = 100;
    let config = Arc::new(Config::load(&config(dir.path(), &fleet, keep)).unwrap());
    let (tx, rx) = channel();
    let tx = std::sync::Mutex::new(tx);
    let monitor = Monitor::start(
        config.clone(),
        config.ssh.settings(false),
        Arc::new(move |ev| {
            let _ = tx.lock().unwrap().send(ev);
        }),
    );
    let mut state = MonitorState::new(&config);
    let take = |state: &mut MonitorState| {
        let events = monitor.take_logs();
        for ev in &events {
            state.apply(ev.clone());
        }
        events
    };
    // The follow is live once the line from before the monitor shows.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(Instant::now() < deadline, "the first line never came");
        if let Ok(MonitorEvent::LogsWaiting { .. }) = rx.recv_timeout(Duration::from_secs(1)) {
            let events = take(&mut state);
            if events.iter().any(
                |e| matches!(e, MonitorEvent::Log { line, .. } if line.text == "before the flood"),
            ) {
                break;
            }
        }
    }

    // A reader that takes once a second, as a slow frame would, while the
    // host writes 20,000 lines at once.
    let written = 20_000;
    flood(&fleet, "flood", written);
    let (mut shown, mut dropped, mut last) = (0usize, 0u64, None);
    let deadline = Instant::now() + Duration::from_secs(30);
    while last != Some(written - 1) {
        assert!(
            Instant::now() < deadline,
            "the flood's last line never came: {shown} shown, {dropped} dropped"
        );
        std::thread::sleep(Duration::from_secs(1));
        let mut lines_now = 0;
        for ev in take(&mut state) {
            match ev {
                MonitorEvent::Log { line, .. } => {
                    let n = flood_number(&line.text).expect("only flood lines now");
                    assert!(
                        last.is_none_or(|l| n > l),
                        "lines out of order: {n} after {last:?}"
                    );
                    last = Some(n);
                    shown += 1;
                    lines_now += 1;
                }
                MonitorEvent::LogsDropped { key, count } => {
                    assert_eq!(key, HOST);
                    dropped += count;
                }
                other => panic!("the inbox gave {other:?}"),
            }
        }
        assert!(
            lines_now <= keep,
            "one take held {lines_now} lines, more than {keep}"
        );
    }
    assert!(
        dropped > 0,
        "a reader once a second must have missed some of a burst"
    );
    assert_eq!(
        shown as u64 + dropped,
        written as u64,
        "every line is either shown or counted as dropped"
    );
    let h = state.host(HOST).unwrap();
    assert_eq!(
        h.logs_dropped, dropped,
        "the console's count is the inbox's"
    );
    assert_eq!(h.log_len(), keep, "the console holds its ring, no more");
    assert_eq!(
        h.log_lines().last().map(|l| l.text.as_str()),
        Some("flood 19999"),
        "the newest line is kept"
    );
    monitor.shutdown();
}

#[test]
fn shipdeck_logs_drops_what_a_stalled_reader_cannot_take_and_says_how_many() {
    let Some(fleet) = SshdFleet::start(1) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    config(dir.path(), &fleet, 100);
    let mut child = shipdeck_in(dir.path())
        .args(["logs", "production", "--lines", "1", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(line.contains("before the flood"), "first line: {line}");

    // Nobody reads stdout while the host writes far more than the pipe and
    // the queue hold; then one last line, and the reader catches up.
    let written = 200_000;
    flood(&fleet, "flood", written);
    std::thread::sleep(Duration::from_secs(3));
    flood(&fleet, "after", 1);
    let (mut printed, mut dropped) = (0u64, 0u64);
    let mut last_flood = None;
    loop {
        line.clear();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "logs ended early");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        match v["kind"].as_str() {
            Some("log") => {
                let text = v["line"].as_str().unwrap();
                // The count of a batch follows its lines: one more line
                // after the first makes sure it has been said.
                if text == "after 0" {
                    flood(&fleet, "last", 1);
                    continue;
                }
                if text == "last 0" {
                    break;
                }
                let n = flood_number(text).expect("a flood line");
                assert!(last_flood.is_none_or(|l| n > l), "{n} after {last_flood:?}");
                last_flood = Some(n);
                printed += 1;
            }
            Some("dropped") => {
                assert_eq!(v["host"], fleet.address(0).as_str(), "{v}");
                dropped += v["lines"].as_u64().unwrap();
            }
            other => panic!("unexpected {other:?}: {line}"),
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(dropped > 0, "a stalled reader must have cost lines");
    assert_eq!(
        printed + dropped,
        written as u64,
        "every line printed or counted"
    );
    assert!(
        stderr.contains("lines dropped: the output did not keep up"),
        "stderr says it in words:\n{stderr}"
    );
}
