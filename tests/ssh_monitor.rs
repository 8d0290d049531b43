//! The monitor against real OpenSSH servers on 127.0.0.1: logs, health, host
//! metrics, app metrics and host state from two hosts, one of which drops
//! and comes back while the other keeps reporting.

mod support;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shipdeck::config::Config;
use shipdeck::monitor::{HealthStatus, HostKey, Monitor, MonitorEvent, MonitorState};
use support::*;

const H0: HostKey = HostKey { env: 0, host: 0 };
const H1: HostKey = HostKey { env: 0, host: 1 };

/// Every event seen so far, and the state reduced from them; log lines are
/// taken from the monitor's inbox when it says they wait, as the console does.
struct Watch<'a> {
    rx: Receiver<MonitorEvent>,
    monitor: &'a Monitor,
    seen: Vec<MonitorEvent>,
    state: MonitorState,
    /// `until` looks at events from this index on.
    mark: usize,
}

impl Watch<'_> {
    /// The first event since the mark that `pred` accepts, waiting up to
    /// `within` for it.
    fn until(
        &mut self,
        what: &str,
        within: Duration,
        pred: impl Fn(&MonitorEvent) -> bool,
    ) -> MonitorEvent {
        if let Some(ev) = self.seen[self.mark..].iter().find(|e| pred(e)) {
            return ev.clone();
        }
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(MonitorEvent::LogsWaiting { .. }) => {
                    let lines = self.monitor.take_logs();
                    if let Some(ev) = self.saw(lines, &pred) {
                        return ev;
                    }
                }
                Ok(ev) => {
                    if let Some(ev) = self.saw(vec![ev], &pred) {
                        return ev;
                    }
                }
                Err(_) => panic!(
                    "no {what} within {within:?}; events so far:\n{}",
                    self.summary()
                ),
            }
        }
    }

    /// Keep `events`; the first that `pred` accepts.
    fn saw(
        &mut self,
        events: Vec<MonitorEvent>,
        pred: &impl Fn(&MonitorEvent) -> bool,
    ) -> Option<MonitorEvent> {
        let mut found = None;
        for ev in events {
            self.seen.push(ev.clone());
            self.state.apply(ev.clone());
            if found.is_none() && pred(&ev) {
                found = Some(ev);
            }
        }
        found
    }

    /// Events seen after index `from` that `pred` accepts.
    fn count_since(&self, from: usize, pred: impl Fn(&MonitorEvent) -> bool) -> usize {
        self.seen[from..].iter().filter(|e| pred(e)).count()
    }

    fn summary(&self) -> String {
        let lines: Vec<String> = self
            .seen
            .iter()
            .rev()
            .take(60)
            .rev()
            .map(|e| match e {
                MonitorEvent::Log { key, line } => format!("{key:?} log {:?}", line.text),
                MonitorEvent::State { key, state } => {
                    format!(
                        "{key:?} state current={:?} lock={:?}",
                        state.current, state.lock
                    )
                }
                other => format!("{other:?}"),
            })
            .collect();
        lines.join("\n")
    }
}

fn is_log(key: HostKey, text: &str) -> impl Fn(&MonitorEvent) -> bool {
    move |e| matches!(e, MonitorEvent::Log { key: k, line } if *k == key && line.text == text)
}

fn is_health(key: HostKey, status: HealthStatus) -> impl Fn(&MonitorEvent) -> bool {
    move |e| matches!(e, MonitorEvent::Health { key: k, sample } if *k == key && sample.status == status)
}

fn is_system(key: HostKey) -> impl Fn(&MonitorEvent) -> bool {
    move |e| matches!(e, MonitorEvent::System { key: k, sample } if *k == key && sample.mem_total > 0)
}

fn append(path: &Path, text: &str) {
    let mut f = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// A Prometheus page on 127.0.0.1 whose counters grow by 100 requests, one
/// of them a 500, at every fetch.
fn metrics_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let fetches = AtomicU64::new(0);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let n = fetches.fetch_add(1, Ordering::Relaxed) + 1;
            let body = format!(
                "# TYPE http_requests_total counter\nhttp_requests_total{{code=\"200\"}} {}\nhttp_requests_total{{code=\"500\"}} {n}\n",
                n * 99
            );
            let _ = write!(
                stream,
                "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

#[test]
fn monitor_follows_two_hosts_and_survives_one_dropping() {
    let Some(mut fleet) = SshdFleet::start(2) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::create_dir_all(root.join("dist")).unwrap();
    fs::write(root.join("dist/version"), "v1\n").unwrap();
    // The health command passes while the release holds `ok`.
    fs::write(root.join("dist/ok"), "").unwrap();
    let metrics_port = metrics_server();
    let config = format!(
        r#"[app]
name = "hello"
artifact = "dist"
deploy_to = "/unused"

[health]
command = "test -f ok"
interval = "500ms"
timeout = "5s"
healthy_after = 1

[logs]
files = ["shared/log/app.log"]
error_pattern = "ERROR"

[metrics]
prometheus = "http://127.0.0.1:{metrics_port}/metrics"
interval = "1s"

[environments.production]
hosts = {hosts}

{ssh}
"#,
        hosts = fleet.hosts_array(),
        ssh = fleet.ssh_section(),
    );
    let config_path = root.join("shipdeck.toml");
    fs::write(&config_path, config).unwrap();
    let shipdeck_ok = |args: &[&str]| {
        let (code, out, err) = run(shipdeck_in(root).args(args));
        assert_eq!(
            code,
            0,
            "shipdeck {args:?}:\n{out}\n{err}\n{}",
            fleet.logs()
        );
    };
    shipdeck_ok(&["build", "--id", "v1"]);
    shipdeck_ok(&["deploy", "production", "v1"]);
    for i in 0..2 {
        let log_dir = fleet.deploy_to(i).join("shared/log");
        fs::create_dir_all(&log_dir).unwrap();
        append(
            &log_dir.join("app.log"),
            &format!("hello from host {i}\nERROR boom {i}\n"),
        );
    }

    let config = Arc::new(Config::load(&config_path).unwrap());
    let (tx, rx) = channel();
    let tx = Mutex::new(tx);
    let monitor = Monitor::start(
        config.clone(),
        config.ssh.settings(false),
        Arc::new(move |ev| {
            let _ = tx.lock().unwrap().send(ev);
        }),
    );
    let mut w = Watch {
        rx,
        monitor: &monitor,
        seen: Vec::new(),
        state: MonitorState::new(&config),
        mark: 0,
    };
    let soon = Duration::from_secs(15);

    // Logs: the lines already there, flagged, then a line written now.
    for (i, key) in [H0, H1].into_iter().enumerate() {
        w.until(
            "backlog line",
            soon,
            is_log(key, &format!("hello from host {i}")),
        );
        let boom = w.until("error line", soon, is_log(key, &format!("ERROR boom {i}")));
        assert!(matches!(boom, MonitorEvent::Log { line, .. } if line.error));
    }
    w.mark = w.seen.len();
    for i in 0..2 {
        append(
            &fleet.deploy_to(i).join("shared/log/app.log"),
            &format!("live {i}\n"),
        );
    }
    w.until("live line from host 0", soon, is_log(H0, "live 0"));
    w.until("live line from host 1", soon, is_log(H1, "live 1"));

    // State, health and host metrics from both hosts, since the start.
    w.mark = 0;
    for key in [H0, H1] {
        w.until("state with v1", soon, |e| {
            matches!(e, MonitorEvent::State { key: k, state } if *k == key
                && state.current.as_ref().is_some_and(|c| c.as_str() == "v1")
                && state.releases.len() == 1
                && !state.history.is_empty())
        });
        w.until("healthy", soon, is_health(key, HealthStatus::Healthy));
        w.until("system sample", soon, is_system(key));
        w.until("cpu share", soon, |e| {
            matches!(e, MonitorEvent::System { key: k, sample } if *k == key
                && sample.cpu_pct.is_some_and(|c| (0.0..=100.0).contains(&c)))
        });
        w.until("app sample", soon, |e| {
            matches!(e, MonitorEvent::App { key: k, sample } if *k == key && sample.requests_total > 0.0)
        });
    }
    w.until(
        "a second app sample",
        soon,
        |e| matches!(e, MonitorEvent::App { key, .. } if *key == H0),
    );
    let h0 = w.state.host(H0).unwrap();
    assert!(h0.request_rate().is_some_and(|r| r > 0.0), "{h0:?}");
    assert_eq!(h0.error_ratio(), Some(0.01));
    assert!(
        h0.memory()
            .is_some_and(|(used, total)| used <= total && total > 0)
    );
    assert_eq!(h0.health_status(), Some(HealthStatus::Healthy));
    assert!(h0.error_lines_per_min(std::time::SystemTime::now()) >= 1.0);

    // Another operator's lock shows up within seconds.
    w.mark = w.seen.len();
    shipdeck_ok(&["lock", "production", "--reason", "maintenance window"]);
    for key in [H0, H1] {
        w.until("state with the lock", soon, |e| {
            matches!(e, MonitorEvent::State { key: k, state } if *k == key
                && state.lock.as_deref().is_some_and(|l| l.contains("maintenance window")))
        });
    }
    w.mark = w.seen.len();
    shipdeck_ok(&["unlock", "production"]);
    w.until(
        "state without the lock",
        soon,
        |e| matches!(e, MonitorEvent::State { key, state } if *key == H0 && state.lock.is_none()),
    );

    // Health fails when the check does.
    w.mark = w.seen.len();
    fs::remove_file(fleet.deploy_to(0).join("current/ok")).unwrap();
    w.until("unhealthy", soon, is_health(H0, HealthStatus::Unhealthy));

    // Host 1 drops: reported within seconds, while host 0 keeps reporting.
    w.mark = w.seen.len();
    fleet.kill(1);
    let dropped = Instant::now();
    w.until(
        "host 1 disconnected",
        Duration::from_secs(10),
        |e| matches!(e, MonitorEvent::Disconnected { key, .. } if *key == H1),
    );
    eprintln!("host 1 reported disconnected after {:?}", dropped.elapsed());
    assert_eq!(
        w.state.host(H1).unwrap().health_status(),
        Some(HealthStatus::Unknown)
    );
    let mark = w.seen.len();
    w.until("host 0 sample after the drop", soon, is_system(H0));
    w.until("host 0 another sample", soon, is_system(H0));
    w.until(
        "host 0 health after the drop",
        soon,
        is_health(H0, HealthStatus::Unhealthy),
    );
    assert_eq!(
        w.count_since(mark, |e| is_system(H1)(e)
            || is_health(H1, HealthStatus::Healthy)(e)),
        0,
        "nothing from a host that is down"
    );

    // Host 1 comes back: connected again, samples and logs resume, and the
    // log lines shown before are not shown twice.
    w.mark = w.seen.len();
    fleet.restart(1);
    let back = Instant::now();
    // About two seconds once it answers (the reconnect backoff is capped
    // at 2 s), with room for a loaded machine.
    w.until(
        "host 1 connected again",
        Duration::from_secs(8),
        |e| matches!(e, MonitorEvent::Connected { key } if *key == H1),
    );
    eprintln!(
        "host 1 reported connected {:?} after restart",
        back.elapsed()
    );
    w.until("host 1 sample", soon, is_system(H1));
    w.until("host 1 healthy", soon, is_health(H1, HealthStatus::Healthy));
    w.until(
        "host 1 state",
        soon,
        |e| matches!(e, MonitorEvent::State { key, .. } if *key == H1),
    );
    assert_eq!(w.state.host(H1).unwrap().connected, Some(true));
    w.mark = w.seen.len();
    append(
        &fleet.deploy_to(1).join("shared/log/app.log"),
        "after the restart\n",
    );
    w.until(
        "host 1 log after restart",
        Duration::from_secs(40),
        is_log(H1, "after the restart"),
    );
    let shown = w.count_since(0, is_log(H1, "hello from host 1"));
    assert_eq!(shown, 1, "backlog shown again after the reconnect");

    let merged = w.state.logs(None, Some("boom"), 10);
    assert_eq!(merged.len(), 2);
    assert!(merged.iter().all(|(_, l)| l.error));

    // A change whose process dies writes nothing more to the host; the
    // console must still show it interrupted within seconds (pid check on
    // this machine at each state tick), not at the next heartbeat.
    // A process that passes for a shipdeck (its argv[0] says so: a pid
    // whose program is something else counts as reused).
    let mut operator = std::process::Command::new("bash")
        .args(["-c", "exec -a shipdeck-operator sleep 60"])
        .spawn()
        .unwrap();
    let journal = shipdeck::model::journal::Journal {
        change: "c-live".into(),
        env: "production".into(),
        kind: shipdeck::engine::ChangeKind::Deploy,
        release: shipdeck::model::ReleaseId::parse("v1").unwrap(),
        sha256: String::new(),
        operator: shipdeck::model::Operator::current(),
        pid: operator.id(),
        started: "2026-12-02T00:00:00Z".into(),
        strategy: "all-at-once".into(),
        hosts: vec!["h0".into(), "h1".into()],
        batches: vec![vec![0, 1]],
        pauses: vec![Vec::new()],
        run_once_on: None,
        host: "h0".into(),
        from: None,
        done: Vec::new(),
        updated: "2026-12-02T00:00:00Z".into(),
        pause: None,
        migration: None,
    };
    fs::write(
        fleet.deploy_to(0).join(".shipdeck/change.json"),
        format!("{}\n", serde_json::to_string(&journal).unwrap()),
    )
    .unwrap();
    let liveness_is = |want: &'static str| {
        move |e: &MonitorEvent| {
            matches!(e, MonitorEvent::State { key, state } if *key == H0
                && state.change.as_ref().is_some_and(|c| format!("{:?}", c.liveness) == want))
        }
    };
    w.mark = w.seen.len();
    w.until("the change shown running", soon, liveness_is("Running"));
    w.mark = w.seen.len();
    operator.kill().unwrap();
    operator.wait().unwrap();
    let died = Instant::now();
    w.until(
        "the change shown interrupted",
        Duration::from_secs(6),
        liveness_is("Interrupted"),
    );
    eprintln!("dead change shown interrupted after {:?}", died.elapsed());

    drop(w);
    let stopping = Instant::now();
    monitor.shutdown();
    eprintln!("monitor shut down in {:?}", stopping.elapsed());
}
