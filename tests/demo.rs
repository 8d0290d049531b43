//! `shipdeck demo` end to end: the real binary builds a sandbox, the sample
//! apps serve on real ports, and the headless commands drive it as an
//! operator would. Every test stops its apps, however it ends.

use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shipdeck::model::prometheus::Kind;

const BIN: &str = env!("CARGO_BIN_EXE_shipdeck");
/// Apps start in the background; status may see one a moment before it listens.
const SETTLE: Duration = Duration::from_secs(10);
/// An app checks its pid file and release folder every second.
const WATCHDOG: Duration = Duration::from_secs(4);
const PROD: [&str; 3] = ["web-1", "web-2", "web-3"];
/// production-eu: blue/green, each host behind a front on its `port`.
const EU: [&str; 2] = ["eu-1", "eu-2"];
/// Every host of the demo, and its processes: an app per host, and on each
/// blue/green host a front too.
const HOSTS: usize = 6;
const PROCESSES: usize = HOSTS + EU.len();
/// The demo's canary analyses its first host for this long (`pause 20s`).
const CANARY_PAUSE: Duration = Duration::from_secs(20);
/// Longest a canary promotion may take to reach its operator pause, or a
/// breach to be rolled back: the timed pause and three switches, with room.
const CANARY_DEADLINE: Duration = Duration::from_secs(90);
/// The demo's `max_error_rate`.
const MAX_ERROR_RATE: &str = "5%";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn command(cwd: &Path, state: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .current_dir(cwd)
        .env("SHIPDECK_OPERATOR", "alice")
        .env("XDG_STATE_HOME", state);
    c
}

fn run(cwd: &Path, state: &Path, args: &[&str]) -> Run {
    let out = command(cwd, state, args).output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A shipdeck command left running (a canary that pauses), its output
/// gathered as it comes. Killed if the test ends before it does.
struct Background {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    args: Vec<String>,
}

fn gather(from: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let into = Arc::new(Mutex::new(String::new()));
    let out = Arc::clone(&into);
    std::thread::spawn(move || {
        let mut from = from;
        let mut buf = [0u8; 4096];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    into
}

impl Background {
    fn start(mut cmd: Command, args: &[&str]) -> Background {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Background {
            stdout: gather(child.stdout.take().unwrap()),
            stderr: gather(child.stderr.take().unwrap()),
            child,
            args: args.iter().map(|a| a.to_string()).collect(),
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Wait until its stderr holds `what`; fail with the output after `within`.
    fn wait_for_output(&mut self, what: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if self.stderr().contains(what) {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "shipdeck {:?} ended ({status}) without saying {what:?}:\n{}",
                    self.args,
                    self.stderr()
                );
            }
            assert!(
                Instant::now() < deadline,
                "shipdeck {:?} did not say {what:?} within {within:?}:\n{}",
                self.args,
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn finish(mut self, within: Duration) -> Run {
        let deadline = Instant::now() + within;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "shipdeck {:?} still runs after {within:?}:\n{}",
                self.args,
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        // The readers drain what is left in the pipes.
        std::thread::sleep(Duration::from_millis(200));
        Run {
            code: status.code().unwrap_or(-1),
            stdout: self.stdout.lock().unwrap().clone(),
            stderr: self.stderr(),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A demo sandbox whose apps are stopped when it drops (a failed assert included).
struct Demo {
    root: tempfile::TempDir,
    dir: PathBuf,
    config: PathBuf,
}

impl Drop for Demo {
    fn drop(&mut self) {
        shipdeck::demo::stop_apps(&self.dir);
    }
}

impl Demo {
    fn new() -> Demo {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("sandbox");
        let state = root.path().join("state");
        let started = Instant::now();
        let r = run(
            root.path(),
            &state,
            &["demo", "--dir", dir.to_str().unwrap(), "--no-console"],
        );
        let demo = Demo {
            config: dir.join("shipdeck.toml"),
            dir,
            root,
        };
        assert_eq!(r.code, 0, "demo failed:\n{}\n{}", r.stdout, r.stderr);
        assert_eq!(
            r.stdout.trim(),
            demo.config.to_str().unwrap(),
            "{}",
            r.stderr
        );
        eprintln!("demo built in {:?}", started.elapsed());
        demo
    }

    fn run(&self, args: &[&str]) -> Run {
        let mut all = vec!["--config", self.config.to_str().unwrap()];
        all.extend_from_slice(args);
        run(self.root.path(), &self.root.path().join("state"), &all)
    }

    fn spawn(&self, args: &[&str]) -> Background {
        let mut all = vec!["--config", self.config.to_str().unwrap()];
        all.extend_from_slice(args);
        Background::start(
            command(self.root.path(), &self.root.path().join("state"), &all),
            args,
        )
    }

    fn ok(&self, args: &[&str]) -> Run {
        let r = self.run(args);
        assert_eq!(
            r.code, 0,
            "shipdeck {args:?} failed:\n{}\n{}",
            r.stdout, r.stderr
        );
        r
    }

    /// The list a `--json` command prints (`releases`, `history`'s `records`).
    fn json(&self, args: &[&str]) -> Vec<serde_json::Value> {
        let mut all = args.to_vec();
        all.push("--json");
        let v: serde_json::Value = serde_json::from_str(&self.ok(&all).stdout).unwrap();
        assert_eq!(v["schema"], 1, "{v}");
        let list = match args[0] {
            "history" => &v["records"],
            other => &v[other],
        };
        serde_json::from_value(list.clone()).unwrap()
    }

    fn host(&self, name: &str) -> PathBuf {
        self.dir.join("hosts").join(name)
    }

    fn current(&self, host: &str) -> Option<String> {
        fs::read_link(self.host(host).join("current"))
            .ok()
            .map(|p| p.to_string_lossy().into_owned())
    }

    /// The port a host's app serves on: its `port` var (on a blue/green
    /// host, its front's).
    fn port(&self, host: &str) -> u16 {
        self.var(host, "port")
    }

    /// A port var of a host: `port`, `blue_port`, `green_port`.
    fn var(&self, host: &str, var: &str) -> u16 {
        let cfg = shipdeck::config::Config::load(&self.config).unwrap();
        let h = cfg
            .environments
            .iter()
            .flat_map(|e| &e.hosts)
            .find(|h| h.name == format!("local:hosts/{host}"))
            .unwrap();
        h.vars[var].parse().unwrap()
    }

    /// The pid a pid file of a host names (`shared/app-blue.pid`).
    fn pid(&self, host: &str, file: &str) -> Option<u32> {
        fs::read_to_string(self.host(host).join(file))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    fn log(&self, host: &str) -> String {
        fs::read_to_string(self.host(host).join(shipdeck::demo::LOG_FILE)).unwrap_or_default()
    }

    /// Wait until `status` shows `release` healthy on every host of `env`
    /// (every host when `None`).
    fn wait_healthy(&self, env: Option<&str>, release: &str, hosts: usize) {
        let deadline = Instant::now() + SETTLE;
        let mut args = vec!["status", "--json"];
        args.extend(env);
        loop {
            let r = self.run(&args);
            let status: Vec<serde_json::Value> =
                serde_json::from_str::<serde_json::Value>(&r.stdout)
                    .ok()
                    .and_then(|v| serde_json::from_value(v["hosts"].clone()).ok())
                    .unwrap_or_default();
            if status.len() == hosts
                && status
                    .iter()
                    .all(|s| s["current"] == release && s["health"] == "healthy")
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not {release} and healthy on {hosts} hosts:\n{}\n{}",
                r.stdout,
                r.stderr
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stop the apps and check none of this sandbox is left running.
    fn finish(self) {
        shipdeck::demo::stop_apps(&self.dir);
        let left = apps_of(&self.dir);
        assert!(left.is_empty(), "sample apps still running: {left:?}");
    }
}

/// Whether `pid` is a live (not zombie) process.
fn alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !matches!(
            stat.rsplit_once(')')
                .and_then(|(_, s)| s.trim_start().chars().next()),
            Some('Z' | 'X')
        )
    })
}

/// Live (not zombie) sample-app processes whose command line names `dir`.
fn apps_of(dir: &Path) -> Vec<String> {
    let dir = dir.to_string_lossy().into_owned();
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if pid.parse::<u32>().is_err() {
            continue;
        }
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let state = stat
            .rsplit_once(')')
            .map(|(_, s)| s.trim_start().chars().next());
        if matches!(state, Some(Some('Z' | 'X'))) {
            continue;
        }
        let Ok(cmd) = fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains("sample-app") && cmd.contains(&dir) {
            found.push(format!("{pid}: {cmd}"));
        }
    }
    found
}

fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    let code = head.split(' ').nth(1)?.parse().ok()?;
    Some((code, body.to_owned()))
}

fn wait_for_code(port: u16, path: &str, code: u16) -> String {
    let deadline = Instant::now() + SETTLE;
    loop {
        let got = http_get(port, path);
        if let Some((c, body)) = &got
            && *c == code
        {
            return body.clone();
        }
        assert!(
            Instant::now() < deadline,
            "{path} on :{port} never answered {code}: {got:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct Metrics {
    ok: f64,
    failed: f64,
    count: f64,
    release: String,
    /// A blue/green slot's app: its slot, and whether it is live.
    slot: String,
    live: Option<f64>,
}

/// Parse `/metrics` as Prometheus text, as a scraper would.
fn metrics(port: u16) -> Metrics {
    let (code, body) = http_get(port, "/metrics").expect("/metrics answers");
    assert_eq!(code, 200, "{body}");
    let page = shipdeck::model::prometheus::parse(&body);
    assert_eq!(page.unreadable, [], "{body}");
    let mut m = Metrics {
        ok: -1.0,
        failed: -1.0,
        count: -1.0,
        release: String::new(),
        slot: String::new(),
        live: None,
    };
    let mut quantiles = 0;
    for s in &page.samples {
        let kind = page.kind(s);
        match (s.name.as_str(), kind) {
            ("http_requests_total", Kind::Counter) => match s.label("code") {
                Some("200") => m.ok = s.value,
                Some("500") => m.failed = s.value,
                other => panic!("unexpected code label {other:?}"),
            },
            ("http_request_duration_seconds", Kind::Summary) => {
                assert!(s.label("quantile").is_some(), "{body}");
                quantiles += 1;
            }
            ("http_request_duration_seconds_count", Kind::Summary) => m.count = s.value,
            ("app_info", _) => {
                m.release = s.label("release").unwrap_or("").to_owned();
                m.slot = s.label("slot").unwrap_or("").to_owned();
            }
            ("app_live", Kind::Gauge) => m.live = Some(s.value),
            _ => {}
        }
    }
    assert_eq!(quantiles, 3, "{body}");
    assert!(m.ok >= 0.0 && m.failed >= 0.0 && m.count >= 0.0, "{body}");
    assert_eq!(m.count, m.ok + m.failed, "{body}");
    m
}

#[test]
fn the_demo_starts_with_v1_healthy_on_every_host() {
    let demo = Demo::new();
    demo.wait_healthy(None, "v1", HOSTS);

    let releases = demo.json(&["releases"]);
    let ids: Vec<&str> = releases.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["v1", "v2", "v3"]);
    assert_eq!(
        releases[0]["runs_on"]["production"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        releases[0]["passed"],
        serde_json::json!(["staging", "production", "production-eu"])
    );

    // Each app answers on its own port, counts its own traffic, and logs.
    let port = demo.port("web-2");
    assert_eq!(wait_for_code(port, "/healthz", 200), "ok\n");
    let first = metrics(port);
    assert_eq!(first.release, "v1");
    assert_eq!(first.failed, 0.0);
    std::thread::sleep(Duration::from_millis(1200));
    let second = metrics(port);
    assert!(
        second.ok >= first.ok + 10.0,
        "requests did not grow: {} then {}",
        first.ok,
        second.ok
    );
    let log = fs::read_to_string(demo.host("web-2").join("shared/log/app.log")).unwrap();
    assert!(log.contains(" INFO GET /api/"), "{log}");
    assert!(log.contains("shop v1 listening on 127.0.0.1:"), "{log}");

    // History says how v1 got everywhere.
    let history = demo.json(&["history", "production"]);
    assert!(
        history
            .iter()
            .any(|h| h["action"] == "promote" && h["release"] == "v1"),
        "{history:?}"
    );

    // Stopped (as when the console quits), then started again on re-opening:
    // on a blue/green host, the live slot's app and the front.
    shipdeck::demo::stop_apps(&demo.dir);
    assert_eq!(apps_of(&demo.dir), Vec::<String>::new());
    assert!(!demo.host("web-1").join("shared/app.pid").exists());
    assert!(!demo.host("eu-1").join("shared/app-blue.pid").exists());
    assert!(!demo.host("eu-1").join("shared/front.pid").exists());
    assert_eq!(shipdeck::demo::start_apps(&demo.dir).unwrap(), HOSTS);
    assert_eq!(shipdeck::demo::start_apps(&demo.dir).unwrap(), 0);
    demo.wait_healthy(None, "v1", HOSTS);
    let eu = metrics(demo.port("eu-2"));
    assert_eq!((eu.release.as_str(), eu.slot.as_str()), ("v1", "blue"));

    // Building the demo again in the same folder replaces it, apps included.
    let old: Vec<String> = apps_of(&demo.dir);
    assert_eq!(old.len(), PROCESSES, "{old:?}");
    let r = run(
        demo.root.path(),
        &demo.root.path().join("state"),
        &["demo", "--dir", demo.dir.to_str().unwrap(), "--no-console"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let new = apps_of(&demo.dir);
    assert_eq!(new.len(), PROCESSES, "{new:?}");
    assert!(old.iter().all(|o| !new.contains(o)), "{old:?}\n{new:?}");
    demo.wait_healthy(None, "v1", HOSTS);
    demo.finish();
}

/// The host's records of `history production --json`.
#[test]
fn a_second_console_quitting_leaves_the_apps_the_first_still_shows() {
    let demo = Demo::new();
    demo.wait_healthy(None, "v1", HOSTS);
    // A first console shows the sandbox (a process that lives on stands
    // for it); a second one, this process, opens on it and quits.
    let mut first = Command::new("sleep").arg("600").spawn().unwrap();
    shipdeck::demo::note_console(&demo.dir, first.id()).unwrap();
    assert_eq!(shipdeck::demo::start_apps(&demo.dir).unwrap(), 0);
    shipdeck::demo::stop_apps(&demo.dir);
    assert_eq!(apps_of(&demo.dir).len(), PROCESSES);
    demo.wait_healthy(None, "v1", HOSTS);
    // The first one quits too (or dies): the apps go with the last.
    first.kill().unwrap();
    first.wait().unwrap();
    demo.finish();
}

fn history_of<'a>(history: &'a [serde_json::Value], host: &str) -> Vec<&'a serde_json::Value> {
    history
        .iter()
        .filter(|h| h["host"].as_str().is_some_and(|n| n.ends_with(host)))
        .collect()
}

/// v2 through staging, then production's canary: web-1 alone for the 20 s
/// of analysis, then half the hosts (2 of 3) and a pause that waits for the
/// operator, who continues it from another process.
fn ship_v2(demo: &Demo) {
    demo.ok(&["deploy", "staging", "v2"]);
    assert_eq!(demo.current("stage-1").as_deref(), Some("releases/v2"));

    let started = Instant::now();
    let mut promote = demo.spawn(&["promote", "v2", "--to", "production"]);
    promote.wait_for_output(
        "waiting for `shipdeck continue production`",
        CANARY_DEADLINE,
    );
    let paused = started.elapsed();
    let out = promote.stderr();
    assert!(paused >= CANARY_PAUSE, "paused after {paused:?}:\n{out}");
    assert!(out.contains("canary analysis passed"), "{out}");
    assert!(!out.contains("breach"), "{out}");
    assert_eq!(demo.current("web-1").as_deref(), Some("releases/v2"));
    assert_eq!(demo.current("web-2").as_deref(), Some("releases/v2"));
    assert_eq!(demo.current("web-3").as_deref(), Some("releases/v1"));

    let told = demo.ok(&["continue", "production"]);
    assert!(
        told.stdout.contains("v2") || told.stderr.contains("v2"),
        "{}\n{}",
        told.stdout,
        told.stderr
    );
    let r = promote.finish(CANARY_DEADLINE);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("continued by alice"), "{}", r.stderr);
    eprintln!(
        "v2: paused for the operator after {paused:?}, done after {:?}",
        started.elapsed()
    );
    for h in PROD {
        assert_eq!(demo.current(h).as_deref(), Some("releases/v2"), "{h}");
    }
    demo.wait_healthy(Some("production"), "v2", 3);
}

#[test]
fn v2_ships_through_the_canary_and_production_rolls_back() {
    let demo = Demo::new();
    demo.wait_healthy(None, "v1", HOSTS);

    ship_v2(&demo);
    let web3 = metrics(demo.port("web-3"));
    assert_eq!(web3.release, "v2");
    assert_eq!(web3.failed, 0.0);

    demo.ok(&["rollback", "production"]);
    for h in PROD {
        assert_eq!(demo.current(h).as_deref(), Some("releases/v1"), "{h}");
    }
    demo.wait_healthy(Some("production"), "v1", 3);
    demo.finish();
}

#[test]
fn v3_passes_staging_then_its_canary_breaches_and_goes_back_by_itself() {
    let demo = Demo::new();
    demo.wait_healthy(None, "v1", HOSTS);
    ship_v2(&demo);

    // Staging's gate is health alone, and v3 is healthy: it passes.
    let r = demo.ok(&["deploy", "staging", "v3"]);
    assert!(!r.stderr.contains("rolled back"), "{}", r.stderr);
    assert_eq!(demo.current("stage-1").as_deref(), Some("releases/v3"));
    let staging = demo.port("stage-1");
    assert_eq!(wait_for_code(staging, "/healthz", 200), "ok\n");
    assert_eq!(metrics(staging).release, "v3");

    // Production's canary catches what the health gate could not.
    let started = Instant::now();
    let r = demo.run(&["promote", "v3", "--to", "production"]);
    let took = started.elapsed();
    eprintln!("v3: promote to rollback in {took:?}\n{}", r.stderr);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(took < CANARY_DEADLINE, "{took:?}");
    // Which metric, its value, the threshold, and the failing host's last
    // log lines.
    let out = &r.stderr;
    assert!(out.contains("canary breach on"), "{out}");
    let breach = out
        .lines()
        .find(|l| l.contains("canary breach on"))
        .unwrap_or_default();
    assert!(breach.contains("web-1"), "{breach}");
    assert!(breach.contains("error rate"), "{breach}");
    assert!(
        breach.contains(&format!("the threshold {MAX_ERROR_RATE} (max_error_rate)")),
        "{breach}"
    );
    assert!(out.contains("last log lines"), "{out}");
    // The lines shown are web-1's own (which of its last lines are errors is
    // chance: about a third of v3's requests fail), and its log holds the
    // failures the breach counted.
    let shown: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("last log lines"))
        .skip(1)
        .take_while(|l| l.starts_with("    "))
        .map(str::trim)
        .collect();
    assert!(!shown.is_empty(), "{out}");
    let log_dir = demo.host("web-1").join("shared/log");
    let logged: String = ["app.log.1", "app.log"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(log_dir.join(f)).ok())
        .collect();
    for line in &shown {
        assert!(logged.contains(line), "{line:?} is not web-1's:\n{out}");
    }
    assert!(
        logged
            .lines()
            .any(|l| l.contains(" ERROR ") && l.contains(" 500 ") && l.contains("panicked")),
        "web-1 logged no failed request:\n{logged}"
    );

    // web-1 went back; web-2 and web-3 never moved.
    for h in PROD {
        assert_eq!(demo.current(h).as_deref(), Some("releases/v2"), "{h}");
    }
    demo.wait_healthy(Some("production"), "v2", 3);
    assert_eq!(demo.current("stage-1").as_deref(), Some("releases/v3"));

    let history = demo.json(&["history", "production"]);
    let web1 = history_of(&history, "web-1");
    let failed = web1
        .iter()
        .find(|h| h["release"] == "v3" && h["outcome"] == "failed")
        .unwrap_or_else(|| panic!("no failed v3 line for web-1: {web1:#?}"));
    let message = failed["message"].as_str().unwrap_or_default();
    assert!(message.contains("error rate"), "{failed}");
    assert!(
        web1.iter()
            .any(|h| h["action"] == "revert" && h["release"] == "v2" && h["from"] == "v3"),
        "web-1 was not put back on v2: {web1:#?}"
    );
    // web-2 and web-3 were prepared but never switched: their only v3 line
    // says so, in one line.
    for h in ["web-2", "web-3"] {
        let lines = history_of(&history, h);
        let v3: Vec<_> = lines.iter().filter(|l| l["release"] == "v3").collect();
        assert_eq!(v3.len(), 1, "{h}: {lines:#?}");
        let message = v3[0]["message"].as_str().unwrap_or_default();
        assert_eq!(v3[0]["outcome"], "failed", "{h}: {v3:#?}");
        assert!(
            message.starts_with("not switched: canary breach on local:hosts/web-1"),
            "{h}: {message}"
        );
        assert!(!message.contains('\n'), "{h}: {message}");
    }
    demo.finish();
}

/// What a blue/green host's front says of the app behind it, once it says
/// `release` on `slot`, live; fails after `SETTLE`.
fn wait_for_slot(port: u16, release: &str, slot: &str) -> Metrics {
    let deadline = Instant::now() + SETTLE;
    loop {
        let m = metrics(port);
        if m.release == release && m.slot == slot && m.live == Some(1.0) {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            ":{port} says {} on {:?} (live {:?}), not {release} on {slot}",
            m.release,
            m.slot,
            m.live
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// production-eu end to end: v1 on blue behind each host's front; v2 to
/// green, with blue still running and idle; rollback is the switch back with
/// nothing restarted; then v2 again and `finish` stops blue.
#[test]
fn production_eu_goes_blue_to_green_switches_back_and_finishes() {
    let started = Instant::now();
    let demo = Demo::new();
    demo.wait_healthy(Some("production-eu"), "v1", EU.len());
    let blue_pid_file = shipdeck::demo::slot_pid_file(shipdeck::model::Slot::Blue);
    let mut blue_pids = Vec::new();
    for h in EU {
        let (front, blue) = (demo.port(h), demo.var(h, "blue_port"));
        wait_for_slot(front, "v1", "blue");
        let upstream = fs::read_to_string(demo.host(h).join(shipdeck::demo::UPSTREAM_FILE));
        assert_eq!(upstream.unwrap().trim(), blue.to_string(), "{h}");
        let front_pid = demo.pid(h, shipdeck::demo::FRONT_PID_FILE);
        assert!(front_pid.is_some_and(alive), "{h}: no front");
        let pid = demo.pid(h, &blue_pid_file).unwrap();
        assert!(alive(pid), "{h}");
        blue_pids.push(pid);
    }

    // v2 passes staging, then goes to the green slots.
    demo.ok(&["deploy", "staging", "v2"]);
    demo.ok(&["promote", "v2", "--to", "production-eu"]);
    let mut through_front = Vec::new();
    for (h, pid) in EU.iter().zip(&blue_pids) {
        let m = wait_for_slot(demo.port(h), "v2", "green");
        assert_eq!(m.failed, 0.0, "{h}");
        through_front.push(m.count);
        // Blue still runs v1, on its own port, idle.
        assert_eq!(demo.pid(h, &blue_pid_file), Some(*pid), "{h}");
        assert!(alive(*pid), "{h}");
        let blue = demo.var(h, "blue_port");
        assert_eq!(wait_for_code(blue, "/healthz", 200), "ok\n");
        let idle = metrics(blue);
        assert_eq!((idle.release.as_str(), idle.slot.as_str()), ("v1", "blue"));
        assert_eq!(idle.live, Some(0.0), "{h}");
    }
    // An idle slot makes no traffic; the live one does.
    let blue_counts: Vec<f64> = EU
        .iter()
        .map(|h| metrics(demo.var(h, "blue_port")).count)
        .collect();
    std::thread::sleep(Duration::from_millis(1200));
    for (i, h) in EU.iter().enumerate() {
        let blue = metrics(demo.var(h, "blue_port"));
        assert_eq!(blue.count, blue_counts[i], "{h}: the idle blue slot served");
        let green = metrics(demo.port(h));
        assert!(
            green.count >= through_front[i] + 10.0,
            "{h}: green serves nothing"
        );
        let green_port = demo.var(h, "green_port");
        let log = demo.log(h);
        assert!(
            log.contains(&format!(
                "INFO [blue] idle: the front sends traffic to 127.0.0.1:{green_port}"
            )),
            "{h}:\n{log}"
        );
        assert!(log.contains(" INFO [green] GET /api/"), "{h}:\n{log}");
        assert!(!log.contains(" ERROR "), "{h}:\n{log}");
    }

    // Rollback before finish: the switch back, nothing restarted.
    demo.ok(&["rollback", "production-eu"]);
    for (h, pid) in EU.iter().zip(&blue_pids) {
        wait_for_slot(demo.port(h), "v1", "blue");
        assert_eq!(
            demo.pid(h, &blue_pid_file),
            Some(*pid),
            "{h}: blue restarted"
        );
        assert!(alive(*pid), "{h}");
        assert_eq!(demo.current(h).as_deref(), Some("releases/v1"), "{h}");
    }
    let history = demo.json(&["history", "production-eu"]);
    for h in EU {
        let lines = history_of(&history, h);
        assert!(
            lines.iter().any(|l| l["action"] == "rollback"
                && l["release"] == "v1"
                && l["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("nothing restarted"))),
            "{h}: {lines:#?}"
        );
    }

    // v2 again, then finish: blue stops, green serves on.
    demo.ok(&["promote", "v2", "--to", "production-eu"]);
    for h in EU {
        wait_for_slot(demo.port(h), "v2", "green");
    }
    demo.ok(&["finish", "production-eu"]);
    for (h, pid) in EU.iter().zip(&blue_pids) {
        let blue = demo.var(h, "blue_port");
        assert_eq!(http_get(blue, "/healthz"), None, "{h}: blue still answers");
        assert!(!alive(*pid), "{h}: blue still runs");
        assert_eq!(demo.pid(h, &blue_pid_file), None, "{h}");
        wait_for_slot(demo.port(h), "v2", "green");
    }
    let history = demo.json(&["history", "production-eu"]);
    for h in EU {
        let lines = history_of(&history, h);
        assert!(
            lines.iter().any(|l| l["action"] == "finish"
                && l["release"] == "v2"
                && l["outcome"] == "success"),
            "{h}: {lines:#?}"
        );
    }
    eprintln!("blue/green story in {:?}", started.elapsed());
    demo.finish();
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts a sample app by hand, outside any sandbox.
struct App {
    dir: tempfile::TempDir,
    port: u16,
}

impl Drop for App {
    fn drop(&mut self) {
        shipdeck::demo::stop_apps(self.dir.path());
        let _ = Command::new(BIN)
            .args(["sample-app", "--stop", "--pid-file"])
            .arg(self.pid_file())
            .status();
    }
}

impl App {
    fn start(bad: bool) -> App {
        App::start_as(bad, "v9")
    }

    fn start_as(bad: bool, release: &str) -> App {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("release")).unwrap();
        let app = App {
            dir,
            port: free_port(),
        };
        let mut cmd = Command::new(BIN);
        cmd.args(["sample-app", "--detach", "--release", release, "--port"])
            .arg(app.port.to_string())
            .arg("--pid-file")
            .arg(app.pid_file())
            .arg("--log")
            .arg(app.dir.path().join("app.log"))
            .arg("--watch")
            .arg(app.dir.path().join("release"));
        if bad {
            cmd.arg("--bad");
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(&format!("started {release} ")),
            "{out:?}"
        );
        assert_eq!(apps_of(app.dir.path()).len(), 1);
        app
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.path().join("app.pid")
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("app.log")).unwrap_or_default()
    }

    fn wait_gone(&self) {
        let deadline = Instant::now() + WATCHDOG;
        while !apps_of(self.dir.path()).is_empty() {
            assert!(Instant::now() < deadline, "still running:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn the_bad_release_passes_health_but_fails_a_third_of_its_requests() {
    let app = App::start(true);
    let asked = Instant::now();
    let (code, body) = http_get(app.port, "/healthz").unwrap();
    assert_eq!((code, body.as_str()), (200, "ok\n"));
    assert!(
        asked.elapsed() >= Duration::from_millis(50),
        "the bad release's /healthz is slower"
    );
    // Its traffic counts from the first second; over 200 requests or more
    // (10 s) its share of 500s is about 30%.
    let first = metrics(app.port);
    let deadline = Instant::now() + 2 * SETTLE;
    let now = loop {
        let now = metrics(app.port);
        if now.count - first.count >= 200.0 {
            break now;
        }
        assert!(Instant::now() < deadline, "no traffic:\n{}", app.log());
        std::thread::sleep(Duration::from_millis(200));
    };
    let share = (now.failed - first.failed) / (now.count - first.count);
    assert!((0.12..0.50).contains(&share), "{share}");
    // The log samples its requests: about as many ERROR lines, in share.
    let log = app.log();
    let requests: Vec<&str> = log.lines().filter(|l| l.contains(" /")).collect();
    let errors = requests
        .iter()
        .filter(|l| l.contains(" ERROR ") && l.contains(" 500 ") && l.contains("panicked at"))
        .count();
    assert!(requests.len() >= 45, "{log}");
    let line_share = errors as f64 / requests.len() as f64;
    assert!((0.08..0.60).contains(&line_share), "{line_share}:\n{log}");

    // --stop: SIGTERM, and the app takes its pid file with it.
    let r = Command::new(BIN)
        .args(["sample-app", "--stop", "--pid-file"])
        .arg(app.pid_file())
        .status()
        .unwrap();
    assert!(r.success());
    app.wait_gone();
    assert!(!app.pid_file().exists());
    assert!(app.log().contains("stopping: SIGTERM"), "{}", app.log());
}

#[test]
fn a_sample_app_exits_when_its_release_folder_or_pid_file_goes() {
    let app = App::start(false);
    assert_eq!(wait_for_code(app.port, "/healthz", 200), "ok\n");
    fs::remove_dir_all(app.dir.path().join("release")).unwrap();
    app.wait_gone();
    assert!(app.log().contains("release is gone"), "{}", app.log());

    let app = App::start(false);
    fs::write(app.pid_file(), "4194303\n").unwrap();
    app.wait_gone();
    assert!(app.log().contains("took over"), "{}", app.log());

    let app = App::start(false);
    fs::remove_file(app.pid_file()).unwrap();
    app.wait_gone();
    assert!(app.log().contains("app.pid is gone"), "{}", app.log());
}

#[test]
fn the_front_moves_new_connections_when_its_upstream_file_is_replaced() {
    let blue = App::start_as(false, "blue");
    let green = App::start_as(false, "green");
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("release")).unwrap();
    let upstream = dir.path().join("upstream");
    let switch = |port: u16| {
        // As a blue/green switch hook does it: a new file renamed over the old.
        let tmp = dir.path().join("upstream.tmp");
        fs::write(&tmp, port.to_string()).unwrap();
        fs::rename(&tmp, &upstream).unwrap();
    };
    switch(blue.port);
    let listen = free_port();
    let pid_file = dir.path().join("front.pid");
    let log = dir.path().join("front.log");
    let out = Command::new(BIN)
        .args(["sample-app", "front", "--detach", "--listen"])
        .arg(listen.to_string())
        .arg("--upstream-file")
        .arg(&upstream)
        .arg("--pid-file")
        .arg(&pid_file)
        .arg("--log")
        .arg(&log)
        .arg("--watch")
        .arg(dir.path().join("release"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains(&format!("started front on 127.0.0.1:{listen}")),
        "{out:?}"
    );
    assert_eq!(apps_of(dir.path()).len(), 1);

    let served_by = |port: u16| metrics(port).release;
    assert_eq!(served_by(listen), "blue");
    switch(green.port);
    assert_eq!(served_by(listen), "green");
    assert_eq!(wait_for_code(listen, "/healthz", 200), "ok\n");
    switch(blue.port);
    assert_eq!(served_by(listen), "blue");

    let text = fs::read_to_string(&log).unwrap();
    assert!(
        text.contains(&format!(
            "front: traffic goes to 127.0.0.1:{} (was 127.0.0.1:{})",
            green.port, blue.port
        )),
        "{text}"
    );

    // Stopped as the apps are, by its pid file, and gone with its folder.
    let r = Command::new(BIN)
        .args(["sample-app", "--stop", "--pid-file"])
        .arg(&pid_file)
        .status()
        .unwrap();
    assert!(r.success());
    assert!(apps_of(dir.path()).is_empty());
    assert!(
        fs::read_to_string(&log).unwrap().contains("front :"),
        "stopping line"
    );
}
