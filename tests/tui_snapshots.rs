//! The whole console rendered into ratatui's TestBackend at 80×24 and
//! 120×40, fed from scripted engine and monitor events; insta keeps what
//! each state looks like, so any change to the screen is reviewed.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use shipdeck::config::Config;
use shipdeck::engine::canary::{Metric, Verdict};
use shipdeck::engine::journal::{ChangeInfo, Liveness};
use shipdeck::engine::plan::{DeployInput, plan_deploy};
use shipdeck::engine::{
    ChangeKind, ChangeOptions, ChangeOutcome, ChangeReport, Command, Control, Event, Step,
    StepStatus,
};
use shipdeck::host::HostState;
use shipdeck::model::{Action, HealthVerdict, HistoryRecord, Operator, Outcome, ReleaseId};
use shipdeck::monitor::{
    HealthSample, HealthStatus, HostKey, HostView, LogLine, MonitorEvent, SystemSample,
};
use shipdeck::store::Manifest;
use shipdeck::tui::{App, ChangeError, Effect, Msg, render_to_buffer};

const CONFIG: &str = r#"
[app]
name = "hello"
artifact = "dist"
deploy_to = "/srv/hello"

[health]
command = "./bin/healthy"

[logs]
files = ["shared/log/app.log"]
error_pattern = "ERROR"

[environments.staging]
hosts = ["local:hosts/stage-1"]

[environments.production]
hosts = ["local:hosts/web-1", "local:hosts/web-2", "local:hosts/web-3"]
requires = "staging"
strategy = { kind = "rolling", batch = 1 }
"#;

/// Progressive delivery: staging blue/green, production a canary of four.
const PROGRESSIVE: &str = r#"
[app]
name = "hello"
artifact = "dist"
deploy_to = "/srv/hello"

[health]
command = "./bin/healthy"

[logs]
files = ["shared/log/app.log"]
error_pattern = "ERROR"

[metrics]
prometheus = "http://127.0.0.1:8080/metrics"

[environments.staging]
hosts = ["local:hosts/stage-1"]
strategy = { kind = "blue-green", switch = "./bin/switch", stop = "./bin/stop", ports = [8081, 8082], finish_after = "10m" }

[environments.production]
hosts = ["local:hosts/web-1", "local:hosts/web-2", "local:hosts/web-3", "local:hosts/web-4"]
requires = "staging"

[environments.production.strategy]
kind = "canary"
steps = ["1", "pause 60s", "50%", "pause", "100%"]
max_error_rate = 0.01
max_latency_ms = 250
"#;

fn at(secs: u64) -> SystemTime {
    // 2026-11-22 03:00:00 UTC
    UNIX_EPOCH + Duration::from_secs(1_795_316_400 + secs)
}

fn id(s: &str) -> ReleaseId {
    ReleaseId::parse(s).unwrap()
}

/// `release` deployed to `env`: v1 at 01:00, v2 at 02:00.
fn record(release: &str, env: &str) -> HistoryRecord {
    let hour = release.trim_start_matches('v');
    HistoryRecord {
        time: format!("2026-11-22T0{hour}:00:00Z"),
        operator: Operator {
            who: "alice".into(),
            machine: "laptop".into(),
        },
        change: format!("c-{release}"),
        action: Action::Deploy,
        env: env.into(),
        host: "h".into(),
        release: Some(id(release)),
        sha256: Some(format!("sha-{release}")),
        from: None,
        outcome: Outcome::Success,
        switched: false,
        health: HealthVerdict::Passed,
        duration_ms: 10,
        message: None,
        migration: None,
    }
}

fn manifest(release: &str) -> Manifest {
    Manifest {
        id: id(release),
        app: "hello".into(),
        sha256: format!("sha-{release}"),
        size: 1000,
        created_at: "2026-11-22T01:00:00Z".into(),
        git_commit: None,
        notes: None,
    }
}

/// Staging on v2, production on v1, all healthy, a few log lines.
fn idle() -> App {
    idle_with(CONFIG)
}

fn idle_with(source: &str) -> App {
    let config = Arc::new(Config::parse(Path::new("/demo/shipdeck.toml"), source).unwrap());
    let mut app = App::new(config, false);
    app.now = at(60);
    app.update(Msg::Releases(["v1", "v2", "v3"].map(manifest).to_vec()));
    let hosts: Vec<(usize, usize)> = app.envs.iter().map(|e| e.hosts.len()).enumerate().collect();
    for (env, n) in hosts {
        for host in 0..n {
            let key = HostKey { env, host };
            let (current, history) = if env == 0 {
                ("v2", vec![record("v1", "staging"), record("v2", "staging")])
            } else {
                ("v1", vec![record("v1", "production")])
            };
            app.update(Msg::Monitor(MonitorEvent::Connected { key }));
            app.update(Msg::Monitor(MonitorEvent::State {
                key,
                state: HostView {
                    current: Some(id(current)),
                    previous: (env == 0).then(|| id("v1")),
                    rollback_ready: env == 0,
                    releases: vec![id("v1"), id("v2")],
                    lock: None,
                    history,
                    change: None,
                    live_slot: None,
                    pending_finish: None,
                    corrupt_history: Vec::new(),
                },
            }));
            for (i, ms) in [3u64, 4, 3, 5, 9, 4, 3, 4].iter().enumerate() {
                app.update(Msg::Monitor(MonitorEvent::Health {
                    key,
                    sample: HealthSample {
                        at: at(i as u64 * 2),
                        status: HealthStatus::Healthy,
                        latency: Some(Duration::from_millis(*ms + host as u64)),
                        detail: "exit status 0".into(),
                    },
                }));
            }
            for (i, cpu) in [None, Some(12.0)].into_iter().enumerate() {
                app.update(Msg::Monitor(MonitorEvent::System {
                    key,
                    sample: SystemSample {
                        at: at(i as u64 * 5),
                        cpu_pct: cpu,
                        mem_used: 512 << 20,
                        mem_total: 2048 << 20,
                        load1: 0.2,
                    },
                }));
            }
        }
    }
    let lines = [
        (0, 0, "INFO GET /api/orders 200 12ms"),
        (1, 0, "INFO GET /api/orders 200 9ms"),
        (1, 1, "INFO GET /healthz 200 1ms"),
        (1, 2, "ERROR upstream timed out after 3000ms"),
        (1, 0, "INFO POST /api/orders 201 31ms"),
    ];
    for (i, (env, host, text)) in lines.iter().enumerate() {
        app.update(Msg::Monitor(MonitorEvent::Log {
            key: HostKey {
                env: *env,
                host: *host,
            },
            line: LogLine {
                host: *host,
                received: at(50 + i as u64),
                text: text.to_string(),
                error: text.starts_with("ERROR"),
            },
        }));
    }
    app
}

fn engine(app: &mut App, ev: Event) {
    app.update(Msg::Engine(ev));
}

fn step(app: &mut App, host: usize, step: Step, status: StepStatus) {
    engine(app, Event::HostStep { host, step, status });
}

fn done() -> StepStatus {
    StepStatus::Done {
        elapsed: Duration::from_millis(5),
        detail: None,
    }
}

/// Promoting v2 to production: web-1 done, web-2 in its health gate, web-3 waiting.
fn in_flight() -> App {
    let mut app = idle();
    app.select_env(1);
    app.now = at(60);
    engine(
        &mut app,
        Event::ChangeStarted {
            change: "c1".into(),
            env: "production".into(),
            kind: ChangeKind::Promote,
            release: Some(id("v2")),
            hosts: vec![
                "local:hosts/web-1".into(),
                "local:hosts/web-2".into(),
                "local:hosts/web-3".into(),
            ],
        },
    );
    for h in 0..3 {
        for s in [Step::Connect, Step::Lock, Step::Upload] {
            step(&mut app, h, s, StepStatus::Started);
            step(&mut app, h, s, done());
        }
    }
    engine(
        &mut app,
        Event::BatchStarted {
            index: 1,
            of: 3,
            hosts: vec![1],
        },
    );
    for s in [Step::Switch, Step::Restart, Step::Health, Step::Record] {
        step(&mut app, 0, s, done());
    }
    step(&mut app, 1, Step::Switch, done());
    step(&mut app, 1, Step::Health, StepStatus::Started);
    app.now = at(72);
    app
}

fn failed() -> App {
    let mut app = in_flight();
    step(
        &mut app,
        1,
        Step::Health,
        StepStatus::Failed {
            elapsed: Duration::from_secs(8),
            error: "not healthy within 8s (0 of 2 passes in a row; last failure: HTTP 500)".into(),
        },
    );
    step(&mut app, 1, Step::Revert, done());
    step(&mut app, 0, Step::Revert, done());
    engine(&mut app, Event::ChangeFinished {
        change: "c1".into(),
        outcome: ChangeOutcome::RolledBack,
        summary: "promote v2 to production stopped: 1 host failed (max_failures = 0); every host runs what it ran before".into(),
    });
    app.update(Msg::ChangeDone(Err(ChangeError::Other(
        "promote v2 to production stopped: 1 host failed; every host runs what it ran before"
            .into(),
    ))));
    app.now = at(80);
    app
}

/// Deploying v2 to production's canary: web-1 switched, the others uploaded,
/// in the timed pause after step 1, 42 s to go, the analysis passing.
fn canary_paused() -> App {
    let mut app = idle_with(PROGRESSIVE);
    app.select_env(1);
    app.now = at(60);
    let names: Vec<String> = (1..=4).map(|i| format!("local:hosts/web-{i}")).collect();
    engine(
        &mut app,
        Event::ChangeStarted {
            change: "c2".into(),
            env: "production".into(),
            kind: ChangeKind::Deploy,
            release: Some(id("v2")),
            hosts: names.clone(),
        },
    );
    let config = app.config.clone();
    let env = &config.environments[1];
    let states = vec![HostState::default(); 4];
    let plan = plan_deploy(&DeployInput {
        env: "production",
        kind: ChangeKind::Deploy,
        strategy: &env.strategy,
        names: &names,
        states: &states,
        release: &id("v2"),
        sha256: "sha-v2",
        hooks: &config.hooks,
        has_health: true,
        has_shared: false,
    });
    engine(&mut app, Event::Planned(plan.clone()));
    for (h, hp) in plan.hosts.iter().enumerate() {
        for s in [Step::Connect, Step::Lock].iter().chain(&hp.prepare) {
            step(&mut app, h, *s, StepStatus::Started);
            step(&mut app, h, *s, done());
        }
    }
    engine(
        &mut app,
        Event::BatchStarted {
            index: 0,
            of: 3,
            hosts: vec![0],
        },
    );
    for s in &plan.hosts[0].publish {
        step(&mut app, 0, *s, StepStatus::Started);
        step(&mut app, 0, *s, done());
    }
    // What the monitor reads of web-1 now.
    let key = HostKey { env: 1, host: 0 };
    let mut view = app.monitor.host(key).and_then(|h| h.view.clone()).unwrap();
    view.current = Some(id("v2"));
    view.previous = Some(id("v1"));
    view.rollback_ready = true;
    app.update(Msg::Monitor(MonitorEvent::State { key, state: view }));
    app.now = at(100);
    engine(
        &mut app,
        Event::Paused {
            batch: 0,
            of: 3,
            canary: vec![0],
            wait: Some(Duration::from_secs(60)),
            why: None,
        },
    );
    app.now = at(118);
    engine(
        &mut app,
        Event::Analysis {
            verdict: Verdict::Pass {
                summary: "1 canary host against 3 baseline hosts: health 100% (min 100%), error rate 0.21% (max 1%), median latency 14 ms (max 250 ms)".into(),
            },
            lines: Vec::new(),
        },
    );
    app
}

/// The timed pause ran out without a verdict: it waits for the operator.
fn canary_waiting() -> App {
    let mut app = canary_paused();
    let why = "web-1 served fewer than 20 requests in the window, so there is no error rate";
    app.now = at(160);
    engine(
        &mut app,
        Event::Analysis {
            verdict: Verdict::Inconclusive { why: why.into() },
            lines: Vec::new(),
        },
    );
    engine(
        &mut app,
        Event::Paused {
            batch: 0,
            of: 3,
            canary: vec![0],
            wait: None,
            why: Some(why.into()),
        },
    );
    app.now = at(185);
    app
}

/// A breach during the pause: web-1 went back, the change is over, and
/// what web-1 logged last is still on screen.
fn canary_breach() -> App {
    let mut app = canary_paused();
    app.now = at(124);
    let verdict = Verdict::Breach {
        metric: Metric::ErrorRate,
        value: 0.125,
        threshold: 0.01,
        host: Some("web-1".into()),
        detail: "40 of 320 requests failed".into(),
    };
    let lines: Vec<String> = [
        "INFO GET /api/orders 200 14ms",
        "ERROR POST /api/orders 500: column orders.currency does not exist",
        "ERROR POST /api/orders 500: column orders.currency does not exist",
        "INFO GET /healthz 200 1ms",
        "ERROR GET /api/orders/42 500: column orders.currency does not exist",
        "WARN pool: 3 connections reset",
    ]
    .map(String::from)
    .to_vec();
    engine(
        &mut app,
        Event::Analysis {
            verdict: verdict.clone(),
            lines: lines.clone(),
        },
    );
    let s = screen(&app, 80, 24);
    assert!(s.contains("CANARY BREACH, putting hosts back"), "{s}");
    assert!(!s.contains("PAUSED") && !s.contains("n  next step"), "{s}");
    engine(
        &mut app,
        Event::Note {
            host: None,
            message: format!("stopping: {verdict}; putting switched hosts back"),
        },
    );
    step(&mut app, 0, Step::Revert, StepStatus::Started);
    step(&mut app, 0, Step::Revert, done());
    let key = HostKey { env: 1, host: 0 };
    let mut view = app.monitor.host(key).and_then(|h| h.view.clone()).unwrap();
    view.current = Some(id("v1"));
    view.previous = None;
    view.rollback_ready = false;
    app.update(Msg::Monitor(MonitorEvent::State { key, state: view }));
    let summary = format!(
        "deploy v2 to production stopped: {verdict}\n  last log lines:\n    {}; every host runs what it ran before",
        lines.join("\n    ")
    );
    engine(
        &mut app,
        Event::ChangeFinished {
            change: "c2".into(),
            outcome: ChangeOutcome::RolledBack,
            summary: summary.clone(),
        },
    );
    app.update(Msg::ChangeDone(Ok(ChangeReport {
        change: "c2".into(),
        env: "production".into(),
        kind: ChangeKind::Deploy,
        release: Some(id("v2")),
        outcome: ChangeOutcome::RolledBack,
        summary,
        duration_ms: 64_000,
        hosts: Vec::new(),
    })));
    app.now = at(130);
    app
}

const MIGRATION: &str = "rollback of production refused, nothing was changed: it crosses the schema migration of v2 (run_once_migrates); the release it goes back to may not run on the migrated schema\n  roll back anyway with `shipdeck rollback production --force` (in the console: R again)";

/// Every host of environment `env` on `current`, going back to `previous`.
fn with_previous(app: &mut App, env: usize, current: &str, previous: &str) {
    let name = app.envs[env].name.clone();
    for host in 0..app.envs[env].hosts.len() {
        let key = HostKey { env, host };
        let mut view = app.monitor.host(key).and_then(|h| h.view.clone()).unwrap();
        view.history.push(record(current, &name));
        view.current = Some(id(current));
        view.previous = Some(id(previous));
        view.rollback_ready = true;
        app.update(Msg::Monitor(MonitorEvent::State { key, state: view }));
    }
}

/// `R` on production, refused: v2 migrated the schema. Armed for 10 s.
fn migration_armed() -> App {
    let mut app = idle();
    with_previous(&mut app, 1, "v2", "v1");
    app.env_cursor = 1;
    assert_eq!(
        key(&mut app, KeyCode::Char('R')),
        [Effect::rollback("production", false)]
    );
    engine(
        &mut app,
        Event::ChangeStarted {
            change: "c3".into(),
            env: "production".into(),
            kind: ChangeKind::Rollback,
            release: None,
            hosts: vec![],
        },
    );
    for h in 0..3 {
        for s in [Step::Connect, Step::Lock] {
            step(&mut app, h, s, done());
        }
    }
    engine(
        &mut app,
        Event::ChangeFinished {
            change: "c3".into(),
            outcome: ChangeOutcome::Failed,
            summary: MIGRATION.into(),
        },
    );
    app.update(Msg::ChangeDone(Err(ChangeError::Migration(
        MIGRATION.into(),
    ))));
    app.now = at(63);
    app
}

fn journal_info(liveness: Liveness, who: &str, machine: &str) -> ChangeInfo {
    ChangeInfo {
        change: "20261122T024800Z-4242-120".into(),
        kind: ChangeKind::Deploy,
        release: id("v2"),
        operator: Operator {
            who: who.into(),
            machine: machine.into(),
        },
        env: "production".into(),
        pid: 4242,
        started: "2026-11-22T02:48:00Z".into(),
        updated: "2026-11-22T02:49:10Z".into(),
        liveness,
        position: "web-2: last step switch".into(),
        pause: None,
    }
}

/// Set what production's hosts say of a change in progress.
fn with_journal(mut app: App, env: usize, hosts: &[usize], info: &ChangeInfo) -> App {
    for &host in hosts {
        let key = HostKey { env, host };
        let mut view = app.monitor.host(key).and_then(|h| h.view.clone()).unwrap();
        view.change = Some(Box::new(info.clone()));
        view.lock = Some(format!(
            "{} (pid 4242) since {}: deploy v2",
            info.operator, info.started
        ));
        app.update(Msg::Monitor(MonitorEvent::State { key, state: view }));
    }
    app
}

/// alice's laptop died during a deploy of v2: production carries its journal.
fn interrupted() -> App {
    let app = idle_with(PROGRESSIVE);
    let info = journal_info(Liveness::Interrupted, "alice", "laptop");
    with_journal(app, 1, &[0, 1, 2, 3], &info)
}

fn key(app: &mut App, code: KeyCode) -> Vec<Effect> {
    app.update(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

fn screen(app: &App, w: u16, h: u16) -> String {
    let buf = render_to_buffer(app, w, h);
    let mut out = String::new();
    for y in 0..h {
        let mut line = String::new();
        for x in 0..w {
            line.push_str(buf[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

macro_rules! both_sizes {
    ($name:ident, $app:expr) => {
        #[test]
        fn $name() {
            let app = $app;
            insta::assert_snapshot!(concat!(stringify!($name), "_80x24"), screen(&app, 80, 24));
            insta::assert_snapshot!(concat!(stringify!($name), "_120x40"), screen(&app, 120, 40));
        }
    };
}

both_sizes!(idle_console, idle());
both_sizes!(
    canary_paused_other_environment_selected,
    canary_paused_staging_selected()
);
both_sizes!(cancel_asks_first, {
    let mut app = canary_paused();
    key(&mut app, KeyCode::Char('c'));
    app
});
both_sizes!(change_in_flight, in_flight());
both_sizes!(failed_change, failed());
both_sizes!(help_overlay, {
    let mut app = idle();
    key(&mut app, KeyCode::Char('?'));
    app
});
both_sizes!(failure_output, {
    let mut app = failed();
    key(&mut app, KeyCode::Char('o'));
    app
});
both_sizes!(canary_paused_timed, canary_paused());
both_sizes!(canary_waiting_inconclusive, canary_waiting());
both_sizes!(canary_breach_rolled_back, canary_breach());
both_sizes!(migration_rollback_armed, migration_armed());
both_sizes!(interrupted_change, interrupted());
both_sizes!(canary_paused_help, {
    let mut app = canary_paused();
    key(&mut app, KeyCode::Char('?'));
    app
});
/// Production's hosts in every state a host can be in: each reads by its
/// glyph and word alone (no colour in these snapshots, as under NO_COLOR).
fn every_health_state() -> App {
    let mut app = idle();
    let prod = |host| HostKey { env: 1, host };
    for (host, status) in [(0, HealthStatus::Unhealthy), (1, HealthStatus::Unknown)] {
        for i in 0..3 {
            app.update(Msg::Monitor(MonitorEvent::Health {
                key: prod(host),
                sample: HealthSample {
                    at: at(40 + i),
                    status,
                    latency: None,
                    detail: "HTTP 503".into(),
                },
            }));
        }
    }
    app.update(Msg::Monitor(MonitorEvent::Disconnected {
        key: prod(2),
        reason: "connection refused".into(),
        retry_in: Duration::from_secs(2),
    }));
    app
}

both_sizes!(health_states_without_colour, every_health_state());

#[test]
fn health_is_readable_without_colour() {
    let text = screen(&every_health_state(), 120, 40);
    for (glyph, word) in [("✗", "failing"), ("?", "unknown"), ("⊘", "unreachable")] {
        assert!(
            text.lines().any(|l| l.contains(glyph) && l.contains(word)),
            "{glyph} {word} in:\n{text}"
        );
    }
    assert!(
        text.contains("✓"),
        "the healthy hosts keep their mark:\n{text}"
    );
    // A probe that got no answer has no latency.
    assert!(!text.contains(" 0ms"), "{text}");
}

both_sizes!(readonly_console, {
    let config = idle().config.clone();
    let mut app = idle();
    app.readonly = true;
    let _ = config;
    key(&mut app, KeyCode::Char('d'));
    app
});

#[test]
fn narrow_terminal_still_shows_every_host_and_the_keys() {
    let s = screen(&idle(), 80, 24);
    for host in ["stage-1", "web-1", "web-2", "web-3"] {
        assert!(s.contains(host), "{host} missing:\n{s}");
    }
    assert!(s.contains("R  roll back staging → v1"), "{s}");
    assert!(s.contains("? help") || s.contains("?  help"), "{s}");
}

#[test]
fn r_rolls_the_selected_environment_back_at_once_and_says_what_it_does() {
    let mut app = idle();
    let effects = key(&mut app, KeyCode::Char('R'));
    assert_eq!(effects, [Effect::rollback("staging", false)]);
    assert!(screen(&app, 120, 40).contains("ROLLING BACK staging: v2 → v1"));
}

#[test]
fn readonly_refuses_every_key_that_changes_hosts() {
    let mut app = idle();
    app.readonly = true;
    for c in ['d', 'p', 'R'] {
        assert!(key(&mut app, KeyCode::Char(c)).is_empty(), "{c}");
    }
    assert!(screen(&app, 80, 24).contains("read-only console"));
}

#[test]
fn quitting_during_a_change_asks_first() {
    let mut app = in_flight();
    assert!(key(&mut app, KeyCode::Char('q')).is_empty());
    assert!(screen(&app, 80, 24).contains("promote v2 → production is running."));
    assert_eq!(
        key(&mut app, KeyCode::Char('q')),
        [shipdeck::tui::Effect::Cancel]
    );
    let mut idle = idle();
    assert_eq!(
        key(&mut idle, KeyCode::Char('q')),
        [shipdeck::tui::Effect::Quit]
    );
}

#[test]
fn the_log_filter_keeps_matching_lines_only() {
    let mut app = idle();
    key(&mut app, KeyCode::Char('/'));
    for c in "error".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    key(&mut app, KeyCode::Enter);
    let s = screen(&app, 120, 40);
    assert!(s.contains("upstream timed out"), "{s}");
    assert!(!s.contains("POST /api/orders"), "{s}");
}

#[test]
fn the_logs_say_which_host_dropped_lines_in_a_flood_and_how_many() {
    let mut app = idle();
    let dropped = |env, host, count| {
        Msg::Monitor(MonitorEvent::LogsDropped {
            key: HostKey { env, host },
            count,
        })
    };
    app.update(dropped(1, 2, 12_000));
    app.update(dropped(1, 2, 408));
    app.update(dropped(1, 0, 7));
    let s = screen(&app, 120, 40);
    let title = s
        .lines()
        .find(|l| l.contains("Logs"))
        .expect("the logs pane");
    assert!(
        title.contains("web-3: 12,408 lines dropped, +1 host"),
        "{s}"
    );
    // The lines that did come are still there.
    assert!(s.contains("upstream timed out"), "{s}");
}

/// The environments pane of a 120-column screen: its rows, up to its border.
fn environments_pane(s: &str) -> String {
    s.lines()
        .take_while(|l| !l.starts_with('└'))
        .map(|l| l.chars().take(74).collect::<String>() + "\n")
        .collect()
}

#[test]
fn s_shows_only_the_hosts_that_match_and_the_selection_stays_among_them() {
    let mut app = idle();
    key(&mut app, KeyCode::Char('s'));
    for c in "web-".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    let s = screen(&app, 120, 40);
    assert!(
        s.contains("show hosts: web-"),
        "the prompt says what it filters:\n{s}"
    );
    key(&mut app, KeyCode::Enter);
    let s = environments_pane(&screen(&app, 120, 40));
    assert!(s.contains("Environments hosts /web-"), "{s}");
    assert!(!s.contains(" stage-1 "), "stage-1 is hidden:\n{s}");
    assert!(s.contains("1 of 1 hosts hidden by the filter"), "{s}");
    for h in ["web-1", "web-2", "web-3"] {
        assert!(s.contains(&format!(" {h} ")), "{h}:\n{s}");
    }
    // The selection walks the shown hosts only, and stops at the ends.
    assert_eq!(app.host_name(app.selected_host()), "web-1");
    key(&mut app, KeyCode::Char('k'));
    assert_eq!(
        app.host_name(app.selected_host()),
        "web-1",
        "no hidden host above"
    );
    key(&mut app, KeyCode::Char('j'));
    key(&mut app, KeyCode::Char('j'));
    key(&mut app, KeyCode::Char('j'));
    assert_eq!(app.host_name(app.selected_host()), "web-3");
    // A filter that hides the selected host moves it to one shown; R still
    // names the whole environment.
    key(&mut app, KeyCode::Char('s'));
    key(&mut app, KeyCode::Char('1'));
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.host_name(app.selected_host()), "web-1");
    let s = environments_pane(&screen(&app, 120, 40));
    assert!(!s.contains(" web-2 ") && !s.contains(" web-3 "), "{s}");
    assert!(s.contains("2 of 3 hosts hidden by the filter"), "{s}");
    // Esc in the prompt shows every host again.
    key(&mut app, KeyCode::Char('s'));
    key(&mut app, KeyCode::Esc);
    let s = environments_pane(&screen(&app, 120, 40));
    assert!(s.contains(" stage-1 ") && s.contains(" web-3 "), "{s}");
    assert!(!s.contains("hidden by the filter"), "{s}");
}

#[test]
fn the_pause_counts_down_and_the_footer_shows_its_keys() {
    let mut app = canary_paused();
    let s = screen(&app, 80, 24);
    assert!(
        s.contains("PAUSED after step 1 of 3 · canary: web-1 (1 of 4 hosts)"),
        "{s}"
    );
    assert!(s.contains("next step in 42s"), "{s}");
    for hint in ["n  next step", "P  promote all", "R  ABORT canary"] {
        assert!(s.contains(hint), "{hint}:\n{s}");
    }
    assert!(!s.contains("d  deploy"), "{s}");
    app.now = at(159);
    app.update(Msg::Tick);
    assert!(screen(&app, 80, 24).contains("next step in 1s"));
    app.now = at(161);
    assert!(screen(&app, 80, 24).contains("next step starting"));
    // Moving on ends the pause: the usual keys come back.
    engine(
        &mut app,
        Event::Continued {
            by: "its timer".into(),
            control: Control::Next,
        },
    );
    let s = screen(&app, 80, 24);
    assert!(!s.contains("PAUSED") && !s.contains("n  next step"), "{s}");
    // Still running: c cancels (asking), R is refused so not offered.
    assert!(s.contains("c  cancel"), "{s}");
    assert!(!s.contains("R  roll back"), "{s}");
}

#[test]
fn keys_in_a_pause_steer_the_change() {
    let mut app = canary_waiting();
    assert_eq!(
        key(&mut app, KeyCode::Char('n')),
        [Effect::Control {
            batch: 0,
            word: Control::Next
        }]
    );
    assert!(screen(&app, 80, 24).contains("next step sent"));
    let mut app = canary_waiting();
    assert_eq!(
        key(&mut app, KeyCode::Char('R')),
        [Effect::Control {
            batch: 0,
            word: Control::Abort
        }]
    );
    assert!(screen(&app, 120, 40).contains("ABORTING the canary: web-1 go back"));
    let mut app = canary_waiting();
    app.readonly = true;
    for c in ['n', 'P', 'R'] {
        assert!(key(&mut app, KeyCode::Char(c)).is_empty(), "{c}");
    }
}

#[test]
fn the_second_r_forces_the_rollback_and_the_warning_goes() {
    let mut app = migration_armed();
    let s = screen(&app, 80, 24);
    assert!(s.contains("again within 7s"), "{s}");
    assert_eq!(
        key(&mut app, KeyCode::Char('R')),
        [Effect::rollback("production", true)]
    );
    let s = screen(&app, 80, 24);
    assert!(
        s.contains("ROLLING BACK production, ACROSS THE SCHEMA MIGRATION"),
        "{s}"
    );
    assert!(!s.contains("again within"), "{s}");
}

#[test]
fn a_change_elsewhere_is_yellow_and_ours_is_not_repeated() {
    let app = idle_with(PROGRESSIVE);
    let info = journal_info(Liveness::Elsewhere, "bob", "ci-runner");
    let s = screen(&with_journal(app, 0, &[0], &info), 120, 40);
    assert!(
        s.contains("IN PROGRESS ELSEWHERE deploy v2 by bob@ci-runner, 13m ago"),
        "{s}"
    );
    assert!(
        s.contains("if it died there: shipdeck unlock staging --force --reason …, then r"),
        "{s}"
    );
    // The console's own change, still in a host's journal: the change pane says it.
    let mut info = journal_info(Liveness::Running, "alice", "laptop");
    info.change = "c2".into();
    let s = screen(&with_journal(canary_paused(), 1, &[0], &info), 120, 40);
    assert!(!s.contains("IN PROGRESS"), "{s}");
    // Another shipdeck of this machine, alive: one yellow line.
    info.change = "c-other".into();
    let s = screen(&with_journal(canary_paused(), 1, &[0], &info), 120, 40);
    assert!(s.contains("▶ IN PROGRESS deploy v2 by alice@laptop"), "{s}");
}

/// The colour of the first cell of `text` on a coloured screen.
fn colour_of(app: &App, text: &str) -> ratatui::style::Color {
    let (w, h) = (120, 40);
    let backend = ratatui::backend::TestBackend::new(w, h);
    let mut terminal = ratatui::Terminal::new(backend).unwrap();
    let theme = shipdeck::tui::theme::Theme { color: true };
    terminal
        .draw(|f| shipdeck::tui::view::draw(f, app, &theme))
        .unwrap();
    let buf = terminal.backend().buffer();
    let first = text.chars().next().unwrap().to_string();
    for y in 0..h {
        let row: String = (0..w).map(|x| buf[(x, y)].symbol()).collect();
        if let Some(i) = row.find(text) {
            let x = row[..i].chars().count() as u16;
            assert_eq!(buf[(x, y)].symbol(), first);
            return buf[(x, y)].fg;
        }
    }
    panic!("{text:?} is not on screen:\n{}", screen(app, w, h));
}

#[test]
fn breaches_are_red_undecided_pauses_yellow_passes_green() {
    use ratatui::style::Color;
    assert_eq!(
        colour_of(&canary_paused(), "✓ canary analysis passed"),
        Color::Green
    );
    assert_eq!(colour_of(&canary_paused(), "⏸ PAUSED"), Color::Yellow);
    let waiting = canary_waiting();
    assert_eq!(colour_of(&waiting, "analysis undecided"), Color::Yellow);
    assert_eq!(colour_of(&waiting, "WAITING FOR YOU"), Color::Yellow);
    let breach = canary_breach();
    assert_eq!(colour_of(&breach, "✗ canary breach on web-1"), Color::Red);
    assert_eq!(colour_of(&breach, "ERROR GET /api/orders/42"), Color::Red);
    assert_eq!(colour_of(&breach, "WARN pool"), Color::Reset);
    assert_eq!(colour_of(&interrupted(), "⚠ INTERRUPTED"), Color::Red);
    let app = idle_with(PROGRESSIVE);
    let info = journal_info(Liveness::Elsewhere, "bob", "ci-runner");
    let elsewhere = with_journal(app, 0, &[0], &info);
    assert_eq!(
        colour_of(&elsewhere, "⚠ IN PROGRESS ELSEWHERE"),
        Color::Yellow
    );
    assert_eq!(
        colour_of(&migration_armed(), "⚠ rollback of production"),
        Color::Red
    );
}

/// Staging's blue/green change of v2 switched traffic to green; blue still
/// runs v1 until the change is finished (by itself in 10 minutes).
fn blue_green_unfinished() -> App {
    let mut app = idle_with(PROGRESSIVE);
    let key = HostKey { env: 0, host: 0 };
    let mut view = app.monitor.host(key).and_then(|h| h.view.clone()).unwrap();
    view.live_slot = Some(shipdeck::model::Slot::Green);
    view.pending_finish = Some(Box::new(shipdeck::engine::bluegreen::PendingFinish {
        change: "c-bg".into(),
        live: shipdeck::model::Slot::Green,
        release: id("v2"),
        old: Some(shipdeck::model::Slot::Blue),
        old_release: Some(id("v1")),
        finish_at: Some("2026-11-22T03:10:00Z".into()),
    }));
    app.update(Msg::Monitor(MonitorEvent::State { key, state: view }));
    app
}

/// bob's canary of v2, run from a CI runner, waits for the operator after
/// its first step.
fn paused_elsewhere() -> App {
    let app = idle_with(PROGRESSIVE);
    let mut info = journal_info(Liveness::Elsewhere, "bob", "ci-runner");
    info.pause = Some(shipdeck::engine::journal::PauseState {
        batch: 0,
        of: 3,
        since: "2026-11-22T02:59:00Z".into(),
        until: None,
        why: None,
    });
    let mut app = with_journal(app, 1, &[0, 1, 2, 3], &info);
    app.env_cursor = 1;
    app
}

/// A deploy of v3 to production, refused by its deploy window.
fn window_refused() -> App {
    let mut app = idle_with(PROGRESSIVE);
    app.env_cursor = 1;
    app.release_cursor = 2;
    let effects = key(&mut app, KeyCode::Char('d'));
    assert_eq!(
        effects,
        [Effect::Run(
            Command::Deploy {
                env: "production".into(),
                release: id("v3"),
            },
            ChangeOptions::default(),
        )]
    );
    app.update(Msg::ChangeDone(Err(ChangeError::Window(
        "production may not be changed now: outside the deploy window Mon-Fri 09:00-16:00 Europe/Berlin: it is Sat 10:12; next opens Mon 09:00\n  to change it anyway, add --override --reason \"why\" (the history keeps both)".into(),
    ))));
    app
}

both_sizes!(blue_green_old_slot_running, blue_green_unfinished());
both_sizes!(canary_paused_elsewhere, paused_elsewhere());
both_sizes!(window_refused_offers_override, window_refused());
both_sizes!(window_override_reason, {
    let mut app = window_refused();
    key(&mut app, KeyCode::Char('O'));
    for c in "hotfix INC-42".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    app
});

#[test]
fn a_blue_green_environment_shows_its_live_slot_and_f_finishes_it() {
    let mut app = blue_green_unfinished();
    let s = screen(&app, 80, 24);
    assert!(s.contains("v2 green"), "{s}");
    assert!(s.contains("⇄ v1"), "{s}");
    assert!(
        s.contains("⇄ blue keeps v1 until F finish (auto in 9m)"),
        "{s}"
    );
    assert!(s.contains("F  finish"), "{s}");
    assert_eq!(
        key(&mut app, KeyCode::Char('F')),
        [Effect::Run(
            Command::Finish {
                env: "staging".into(),
                change: None,
            },
            ChangeOptions::default(),
        )]
    );
    // F means nothing on an environment with nothing to finish.
    let mut app = blue_green_unfinished();
    app.env_cursor = 1;
    assert!(key(&mut app, KeyCode::Char('F')).is_empty());
}

#[test]
fn a_due_finish_after_is_finished_once_and_never_by_a_readonly_console() {
    let mut app = blue_green_unfinished();
    assert!(app.needs_clock(), "a finish to come keeps the clock");
    app.now = at(599);
    assert!(app.update(Msg::Tick).is_empty());
    app.now = at(600);
    assert_eq!(
        app.update(Msg::Tick),
        [Effect::Run(
            Command::Finish {
                env: "staging".into(),
                change: Some("c-bg".into()),
            },
            ChangeOptions::default(),
        )]
    );
    app.update(Msg::ChangeDone(Err(ChangeError::Other("locked".into()))));
    app.now = at(601);
    assert!(app.update(Msg::Tick).is_empty(), "asked for once");

    let mut app = blue_green_unfinished();
    app.readonly = true;
    app.now = at(700);
    assert!(app.update(Msg::Tick).is_empty());
    assert!(!app.needs_clock());
}

#[test]
fn a_pause_elsewhere_is_steered_through_its_hosts() {
    let mut app = paused_elsewhere();
    let s = screen(&app, 120, 40);
    assert!(
        s.contains("⏸ PAUSED after step 1/3: waiting for you · n next · P all · R abort"),
        "{s}"
    );
    assert!(!s.contains("d  deploy"), "{s}");
    assert_eq!(
        key(&mut app, KeyCode::Char('n')),
        [Effect::Run(
            Command::Signal {
                env: "production".into(),
                control: Control::Next,
            },
            ChangeOptions::default(),
        )]
    );
    assert!(screen(&app, 120, 40).contains("telling deploy v2 by bob@ci-runner"));
    // One word per pause; an abort may still follow.
    assert!(key(&mut app, KeyCode::Char('n')).is_empty());
    assert_eq!(
        key(&mut app, KeyCode::Char('R')),
        [Effect::Run(
            Command::Signal {
                env: "production".into(),
                control: Control::Abort,
            },
            ChangeOptions::default(),
        )]
    );
    app.update(Msg::Told(Err("no host could be reached".into())));
    assert!(screen(&app, 120, 40).contains("no host could be reached"));
    // On another environment, R is that environment's rollback.
    let mut app = paused_elsewhere();
    app.env_cursor = 0;
    assert_eq!(
        key(&mut app, KeyCode::Char('R')),
        [Effect::rollback("staging", false)]
    );
}

#[test]
fn an_interrupted_change_says_where_it_stopped_and_r_resumes_it() {
    let mut app = interrupted();
    app.env_cursor = 1;
    let s = screen(&app, 80, 24);
    assert!(s.contains("stopped at web-2: last step switch"), "{s}");
    let s = screen(&app, 120, 40);
    assert!(
        s.contains("stopped at web-2: last step switch · r resume · R undo"),
        "{s}"
    );
    assert_eq!(
        key(&mut app, KeyCode::Char('r')),
        [Effect::Run(
            Command::Resume {
                env: "production".into(),
            },
            ChangeOptions::default(),
        )]
    );
    // Nothing interrupted on staging: r does nothing there.
    let mut app = interrupted();
    app.env_cursor = 0;
    assert!(key(&mut app, KeyCode::Char('r')).is_empty());
}

#[test]
fn a_window_refusal_offers_an_override_that_needs_a_reason() {
    let mut app = window_refused();
    let s = screen(&app, 80, 24);
    assert!(s.contains("outside the deploy window Mon-Fri"), "{s}");
    assert!(s.contains("next opens Mon 09:00"), "{s}");
    assert!(s.contains("O  override window"), "{s}");
    // Esc leaves the offer: the status goes back to one line.
    let mut left = window_refused();
    key(&mut left, KeyCode::Esc);
    assert!(left.offer.is_none());
    assert!(!screen(&left, 80, 24).contains("override it"));
    key(&mut app, KeyCode::Char('O'));
    // An empty reason starts nothing.
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    for c in "hotfix INC-42".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        [Effect::Run(
            Command::Deploy {
                env: "production".into(),
                release: id("v3"),
            },
            ChangeOptions {
                override_reason: Some("hotfix INC-42".into()),
                ..ChangeOptions::default()
            },
        )]
    );
    assert!(screen(&app, 80, 24).contains("OVERRIDING the deploy window: hotfix INC-42"));
    // Esc leaves it; the offer goes with the next change asked for.
    let mut app = window_refused();
    key(&mut app, KeyCode::Char('O'));
    key(&mut app, KeyCode::Esc);
    assert!(screen(&app, 80, 24).contains("not overridden"));
    // A read-only console opens no prompt.
    let mut app = window_refused();
    app.readonly = true;
    assert!(key(&mut app, KeyCode::Char('O')).is_empty());
    assert!(!screen(&app, 80, 24).contains("Override the deploy window"));
}

#[test]
fn an_aborted_canary_says_its_hosts_are_going_back() {
    let mut app = canary_waiting();
    engine(
        &mut app,
        Event::Continued {
            by: "alice@laptop".into(),
            control: Control::Abort,
        },
    );
    let s = screen(&app, 120, 40);
    assert!(s.contains("ABORTED, putting the canary hosts back"), "{s}");
    assert!(!s.contains("WAITING FOR YOU"), "{s}");
}

/// Every state the snapshots show, by name.
fn every_state() -> Vec<(&'static str, App)> {
    let with_key = |mut app: App, code: KeyCode| {
        key(&mut app, code);
        app
    };
    let mut readonly = idle();
    readonly.readonly = true;
    key(&mut readonly, KeyCode::Char('d'));
    let mut reason = window_refused();
    key(&mut reason, KeyCode::Char('O'));
    for c in "hotfix INC-42".chars() {
        key(&mut reason, KeyCode::Char(c));
    }
    vec![
        ("idle", idle()),
        ("in flight", in_flight()),
        ("failed", failed()),
        ("help", with_key(idle(), KeyCode::Char('?'))),
        ("output", with_key(failed(), KeyCode::Char('o'))),
        ("confirm quit", with_key(in_flight(), KeyCode::Char('q'))),
        ("confirm cancel", with_key(in_flight(), KeyCode::Char('c'))),
        (
            "canary paused, staging selected",
            canary_paused_staging_selected(),
        ),
        ("filter", with_key(idle(), KeyCode::Char('/'))),
        ("canary paused", canary_paused()),
        ("canary waiting", canary_waiting()),
        ("canary breach", canary_breach()),
        (
            "canary paused help",
            with_key(canary_paused(), KeyCode::Char('?')),
        ),
        ("migration armed", migration_armed()),
        ("interrupted", interrupted()),
        ("readonly", readonly),
        ("blue/green unfinished", blue_green_unfinished()),
        ("paused elsewhere", paused_elsewhere()),
        ("window refused", window_refused()),
        ("override reason", reason),
        ("history", with_key(with_history(), KeyCode::Char('H'))),
        ("host detail", host_detail()),
        ("succeeded", succeeded()),
        ("logs scrolled", with_key(many_log_lines(), KeyCode::PageUp)),
    ]
}

/// The first row of a rendered screen.
fn first_row(buf: &ratatui::buffer::Buffer) -> String {
    (0..buf.area.width).map(|x| buf[(x, 0)].symbol()).collect()
}

#[test]
fn every_size_from_1x1_to_200x60_draws_without_panicking() {
    use ratatui::layout::Rect;
    use shipdeck::tui::view::{MIN_HEIGHT, MIN_WIDTH};
    let too_small = format!("terminal too small (need {MIN_WIDTH}x{MIN_HEIGHT})");
    let theme = shipdeck::tui::theme::Theme { color: false };
    // Room for every size's layouts: states that split the screen alike
    // share the solver's work.
    ratatui::layout::Layout::init_cache(std::num::NonZeroUsize::new(100_000).unwrap());
    let started = std::time::Instant::now();
    for (name, app) in every_state() {
        // Each size drawn once into the frame's buffer: nothing is flushed
        // to the backend, which only the snapshots need.
        let backend = ratatui::backend::TestBackend::new(200, 60);
        let options = ratatui::TerminalOptions {
            viewport: ratatui::Viewport::Fixed(Rect::new(0, 0, 1, 1)),
        };
        let mut terminal = ratatui::Terminal::with_options(backend, options).unwrap();
        for w in 1..=200u16 {
            for h in 1..=60u16 {
                terminal.resize(Rect::new(0, 0, w, h)).unwrap();
                terminal.current_buffer_mut().reset();
                let drawn = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    shipdeck::tui::view::draw(&mut terminal.get_frame(), &app, &theme);
                }));
                assert!(drawn.is_ok(), "{name} panicked at {w}x{h}");
                let row = first_row(terminal.current_buffer_mut());
                if w < MIN_WIDTH || h < MIN_HEIGHT {
                    // The one line, cut to the width.
                    let shown = row.trim_end();
                    let cut = shown.strip_suffix('…').unwrap_or(shown);
                    assert!(
                        row.starts_with(&too_small)
                            || !shown.is_empty() && too_small.starts_with(cut),
                        "{name} at {w}x{h}: {row}"
                    );
                } else {
                    assert!(!row.contains("too small"), "{name} at {w}x{h}: {row}");
                }
            }
        }
    }
    eprintln!("every size of every state drawn in {:?}", started.elapsed());
}

/// Production's canary paused; the operator moved up to staging.
fn canary_paused_staging_selected() -> App {
    let mut app = canary_paused();
    key(&mut app, KeyCode::Up);
    assert_eq!(app.selected_env().name, "staging");
    app
}

#[test]
fn esc_during_a_change_never_cancels_it() {
    for mut app in [in_flight(), canary_paused(), canary_waiting()] {
        let before = screen(&app, 120, 40);
        assert!(key(&mut app, KeyCode::Esc).is_empty());
        for code in [KeyCode::Char('?'), KeyCode::Esc, KeyCode::Esc] {
            assert!(key(&mut app, code).is_empty(), "{code:?}");
        }
        let s = screen(&app, 120, 40);
        assert!(app.change_running(), "{s}");
        assert!(!s.contains("CANCELLING") && !s.contains("Cancel?"), "{s}");
        // The screen is what it was: nothing happened.
        assert_eq!(s, before);
        // Neither footer nor help offer Esc as a cancel.
        assert!(!s.contains("c/Esc"), "{s}");
        key(&mut app, KeyCode::Char('?'));
        let help = screen(&app, 120, 40);
        assert!(help.contains("Esc  close, clear or go back"), "{help}");
        assert!(help.contains("never changes a host"), "{help}");
    }
}

#[test]
fn c_asks_and_only_y_cancels() {
    let mut app = in_flight();
    let s = screen(&app, 80, 24);
    assert!(s.contains("c  cancel "), "{s}");
    assert!(key(&mut app, KeyCode::Char('c')).is_empty());
    let s = screen(&app, 80, 24);
    assert!(s.contains("promote v2 → production is running."), "{s}");
    assert!(s.contains("y: cancel it"), "{s}");
    assert!(s.contains("any other key: leave it running"), "{s}");
    assert!(key(&mut app, KeyCode::Char('n')).is_empty());
    let s = screen(&app, 80, 24);
    assert!(
        s.contains("not cancelled: promote v2 → production goes on"),
        "{s}"
    );
    assert!(app.change_running());
    key(&mut app, KeyCode::Char('c'));
    assert_eq!(key(&mut app, KeyCode::Char('y')), [Effect::Cancel]);
    assert!(screen(&app, 80, 24).contains("CANCELLING promote v2 → production"));
    // Nothing running: no c in the footer, and c does nothing.
    let mut app = idle();
    assert!(!screen(&app, 80, 24).contains("cancel"));
    assert!(key(&mut app, KeyCode::Char('c')).is_empty());
    assert!(!screen(&app, 80, 24).contains("Cancel?"));
}

#[test]
fn r_acts_on_the_selected_environment_and_keys_for_another_name_it() {
    let mut app = canary_paused_staging_selected();
    let s = screen(&app, 120, 40);
    // The footer: staging's keys; c names production's change.
    assert!(s.contains("c  cancel production"), "{s}");
    assert!(
        !s.contains("ABORT canary") && !s.contains("n  next step"),
        "{s}"
    );
    assert!(s.contains("select production to steer it"), "{s}");
    // R, n, P: nothing reaches production's canary, and each says why.
    assert!(key(&mut app, KeyCode::Char('R')).is_empty());
    let s = screen(&app, 120, 40);
    assert!(
        s.contains("staging not rolled back: deploy v2 → production is running"),
        "{s}"
    );
    for c in ['n', 'P'] {
        assert!(key(&mut app, KeyCode::Char(c)).is_empty(), "{c}");
        let s = screen(&app, 120, 40);
        assert!(
            s.contains(&format!(
                "{c}: only while a canary of the selected environment is paused"
            )),
            "{s}"
        );
    }
    assert!(
        s.contains("next step in 42s"),
        "still paused, untouched:\n{s}"
    );
    // Back on production, R aborts its canary, as its footer says.
    key(&mut app, KeyCode::Down);
    let s = screen(&app, 120, 40);
    assert!(
        s.contains("R  ABORT canary") && s.contains("c  cancel "),
        "{s}"
    );
    assert!(!s.contains("cancel production"), "{s}");
    assert_eq!(
        key(&mut app, KeyCode::Char('R')),
        [Effect::Control {
            batch: 0,
            word: Control::Abort
        }]
    );
    // Idle, each environment's R names it and where it goes; where there
    // is nothing to go back to, R is not offered and says so.
    let mut app = idle();
    assert!(screen(&app, 80, 24).contains("R  roll back staging → v1"));
    app.select_env(1);
    assert!(!screen(&app, 80, 24).contains("R  roll back"));
    assert!(key(&mut app, KeyCode::Char('R')).is_empty());
    assert!(
        screen(&app, 80, 24)
            .contains("production not rolled back: no host of it has a release to go back to")
    );
    with_previous(&mut app, 1, "v2", "v1");
    assert!(screen(&app, 80, 24).contains("R  roll back production → v1"));
    assert_eq!(
        key(&mut app, KeyCode::Char('R')),
        [Effect::rollback("production", false)]
    );
}

/// What the monitor reads of one host: on `current`, deployed at `hour`.
fn host_state(app: &mut App, env: usize, host: usize, current: &str, env_name: &str) {
    let mut r = record(current, env_name);
    r.release = Some(id(current));
    app.update(Msg::Monitor(MonitorEvent::State {
        key: HostKey { env, host },
        state: HostView {
            current: Some(id(current)),
            previous: None,
            rollback_ready: false,
            releases: vec![id(current)],
            lock: None,
            history: vec![r],
            change: None,
            live_slot: None,
            pending_finish: None,
            corrupt_history: Vec::new(),
        },
    }));
}

/// production: web-1 and web-2 went to v2, web-3 missed it and still runs
/// v1; web-2's history has a corrupt line 3.
fn one_host_behind() -> App {
    let mut app = idle();
    for host in [0, 1] {
        host_state(&mut app, 1, host, "v2", "production");
    }
    let key = HostKey { env: 1, host: 1 };
    let mut view = app.monitor.host(key).unwrap().view.clone().unwrap();
    view.corrupt_history = vec![3];
    app.update(Msg::Monitor(MonitorEvent::State { key, state: view }));
    app
}

both_sizes!(a_host_behind_and_a_corrupt_history_line, one_host_behind());

#[test]
fn a_host_that_missed_the_last_change_is_marked_behind_and_corrupt_history_is_shown() {
    let text = screen(&one_host_behind(), 120, 40);
    let row = |name: &str| {
        text.lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("{name} in:\n{text}"))
            .to_owned()
    };
    assert!(row("web-3").contains("behind: production on v2"), "{text}");
    let narrow = screen(&one_host_behind(), 80, 24);
    assert!(
        narrow
            .lines()
            .any(|l| l.contains("web-3") && l.contains("BEHIND v2")),
        "{narrow}"
    );
    assert!(!row("web-1").contains("behind"), "{text}");
    assert!(row("web-2").contains("history line 3 corrupt"), "{text}");
    // While a change runs there, hosts differ by design: nobody is behind.
    let mut app = one_host_behind();
    engine(
        &mut app,
        Event::ChangeStarted {
            change: "c-9".into(),
            env: "production".into(),
            kind: ChangeKind::Deploy,
            release: Some(id("v2")),
            hosts: vec!["web-1".into(), "web-2".into(), "web-3".into()],
        },
    );
    assert!(!screen(&app, 120, 40).contains("behind"));
}

#[test]
fn the_console_opens_on_the_environment_changed_last() {
    let config = Arc::new(Config::parse(Path::new("/demo/shipdeck.toml"), CONFIG).unwrap());
    // Nothing read yet: the last environment.
    let mut app = App::new(config.clone(), false);
    assert_eq!(app.selected_env().name, "production");
    // Staging changed at 02:00, production at 01:00: staging.
    host_state(&mut app, 1, 0, "v1", "production");
    assert_eq!(app.selected_env().name, "production");
    host_state(&mut app, 0, 0, "v2", "staging");
    assert_eq!(app.selected_env().name, "staging");
    host_state(&mut app, 1, 1, "v1", "production");
    host_state(&mut app, 1, 2, "v1", "production");
    assert_eq!(app.selected_env().name, "staging");
    assert!(screen(&app, 80, 24).contains("H  history"));
    assert!(
        app.rollback_refusal()
            .is_some_and(|why| why.starts_with("staging not rolled back")),
        "the selection is staging's"
    );
    // Every host read: the selection stays, whatever comes next.
    host_state(&mut app, 1, 2, "v2", "production");
    assert_eq!(app.selected_env().name, "staging");

    // A key makes the selection the operator's at once.
    let mut app = App::new(config, false);
    host_state(&mut app, 1, 0, "v1", "production");
    key(&mut app, KeyCode::Char('?'));
    host_state(&mut app, 0, 0, "v2", "staging");
    assert_eq!(app.selected_env().name, "production");
}

#[test]
fn the_first_frames_say_loading_not_that_nothing_was_built() {
    let config = Arc::new(Config::parse(Path::new("/demo/shipdeck.toml"), CONFIG).unwrap());
    let mut app = App::new(config, false);
    let first = screen(&app, 120, 40);
    assert!(first.contains("loading…"), "{first}");
    assert!(!first.contains("no releases"), "{first}");
    app.update(Msg::Releases(Vec::new()));
    assert!(screen(&app, 120, 40).contains("no releases: shipdeck build"));
    app.update(Msg::Releases(["v1"].map(manifest).to_vec()));
    let listed = screen(&app, 120, 40);
    assert!(
        !listed.contains("loading…") && listed.contains("v1"),
        "{listed}"
    );
}

/// A history record of `env`'s host `host` at `time`.
fn happened(
    time: &str,
    change: &str,
    action: Action,
    host: &str,
    release: Option<&str>,
    from: Option<&str>,
    outcome: Outcome,
) -> HistoryRecord {
    HistoryRecord {
        time: time.into(),
        change: change.into(),
        action,
        host: host.into(),
        release: release.map(id),
        from: from.map(id),
        outcome,
        ..record("v1", "production")
    }
}

/// Production's hosts' own history: v1 everywhere at 01:00; bob's promote
/// of v2 at 02:00 failed its health gate on web-2 and was put back; alice
/// held production for an incident, then released it; carol promoted v2
/// again at 02:40; a rollback to v1 at 02:55.
fn with_history() -> App {
    let mut app = idle();
    let bob = Operator {
        who: "bob".into(),
        machine: "ci-runner".into(),
    };
    for host in 0..3 {
        let name = format!("local:hosts/web-{}", host + 1);
        let ok = Outcome::Success;
        let mut records = vec![happened(
            "2026-11-22T01:00:00Z",
            "c-v1",
            Action::Deploy,
            &name,
            Some("v1"),
            None,
            ok,
        )];
        let gate = if host == 1 { Outcome::Failed } else { ok };
        let mut promote = happened(
            "2026-11-22T02:00:00.120Z",
            "c-bob",
            Action::Promote,
            &name,
            Some("v2"),
            Some("v1"),
            gate,
        );
        promote.operator = bob.clone();
        if host == 1 {
            promote.message = Some("not healthy within 8s (HTTP 500)".into());
        }
        records.push(promote);
        if host == 0 {
            let mut revert = happened(
                "2026-11-22T02:00:09Z",
                "c-bob",
                Action::Revert,
                &name,
                Some("v1"),
                Some("v2"),
                ok,
            );
            revert.operator = bob.clone();
            records.push(revert);
        }
        let mut lock = happened(
            "2026-11-22T02:10:00Z",
            "c-lock",
            Action::Lock,
            &name,
            None,
            None,
            ok,
        );
        lock.message = Some("INC-4711: checkout errors, hold deploys".into());
        records.push(lock);
        records.push(happened(
            "2026-11-22T02:30:00Z",
            "c-unlock",
            Action::Unlock,
            &name,
            None,
            None,
            ok,
        ));
        let mut carol = happened(
            "2026-11-22T02:40:00Z",
            "c-carol",
            Action::Promote,
            &name,
            Some("v2"),
            Some("v1"),
            ok,
        );
        carol.operator.who = "carol".into();
        records.push(carol);
        records.push(happened(
            "2026-11-22T02:55:00Z",
            "c-rb",
            Action::Rollback,
            &name,
            Some("v1"),
            Some("v2"),
            ok,
        ));
        let key = HostKey { env: 1, host };
        let mut view = app.monitor.host(key).and_then(|h| h.view.clone()).unwrap();
        view.history = records;
        view.previous = None;
        app.update(Msg::Monitor(MonitorEvent::State { key, state: view }));
    }
    app.select_env(1);
    app
}

both_sizes!(history_view, {
    let mut app = with_history();
    key(&mut app, KeyCode::Char('H'));
    app
});

#[test]
fn the_history_lists_each_change_once_newest_first_as_the_cli_does() {
    let mut app = with_history();
    assert!(key(&mut app, KeyCode::Char('H')).is_empty());
    let s = screen(&app, 120, 40);
    let order = [
        "rollback", "promote", "unlock", "lock", "revert", "promote", "deploy",
    ];
    let rows: Vec<&str> = s.lines().filter(|l| l.contains("2026-11-22 0")).collect();
    assert_eq!(rows.len(), order.len(), "{s}");
    for (row, action) in rows.iter().zip(order) {
        assert!(row.contains(&format!(" {action} ")), "{action}: {row}\n{s}");
    }
    // bob's promote: failed on web-2 (named as the screen names it), with why.
    let bob = rows[5];
    assert!(
        bob.contains("bob@ci-runner") && bob.contains("FAILED 1/3 web-2"),
        "{bob}"
    );
    assert!(
        bob.contains("v1 → v2") && bob.contains("not healthy within 8s"),
        "{bob}"
    );
    assert!(rows[3].contains("INC-4711"), "{}", rows[3]);
    // The same lines as `shipdeck history`: one projection for both.
    let records: Vec<HistoryRecord> = (0..3)
        .flat_map(|host| {
            app.monitor
                .host(HostKey { env: 1, host })
                .unwrap()
                .view
                .clone()
                .unwrap()
                .history
        })
        .collect();
    let mut records = records;
    shipdeck::model::history::in_order(&mut records);
    let cli: Vec<String> = shipdeck::model::history::changes(&records)
        .iter()
        .map(|c| c.outcome())
        .rev()
        .collect();
    let console: Vec<String> = app.history_rows(1).into_iter().map(|r| r.outcome).collect();
    assert_eq!(console, cli);
    // Tab: the next environment's; Esc: back to the console.
    key(&mut app, KeyCode::Tab);
    assert!(screen(&app, 120, 40).contains("History staging"));
    key(&mut app, KeyCode::Esc);
    let s = screen(&app, 120, 40);
    assert!(s.contains("Environments") && !s.contains("History"), "{s}");
}

/// web-2 of production selected, Enter: its detail.
fn host_detail() -> App {
    let mut app = with_history();
    app.host_cursor = 1;
    let key_ = HostKey { env: 1, host: 1 };
    let mut view = app.monitor.host(key_).and_then(|h| h.view.clone()).unwrap();
    view.previous = Some(id("v2"));
    view.rollback_ready = true;
    view.lock = Some("alice@laptop since 2026-11-22T02:58:00Z (shipdeck lock): INC-4711".into());
    app.update(Msg::Monitor(MonitorEvent::State {
        key: key_,
        state: view,
    }));
    for i in 0..30 {
        app.update(Msg::Monitor(MonitorEvent::Log {
            key: key_,
            line: LogLine {
                host: 1,
                received: at(10 + i),
                text: format!("INFO GET /api/orders/{i} 200 {}ms", 5 + i % 7),
                error: false,
            },
        }));
    }
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    app
}

both_sizes!(host_detail_page, host_detail());

#[test]
fn enter_on_a_host_shows_what_it_runs_ran_and_could_go_back_to() {
    let mut app = host_detail();
    let s = screen(&app, 120, 40);
    for want in [
        "web-2 · production · local:hosts/web-2",
        "runs         v1",
        "previous     v2 · rollback ready: on disk",
        "last change  02:55:00",
        "rollback v2 → v1 by alice@laptop: success",
        "health       ✓ healthy",
        "lock         held by alice@laptop since 2026-11-22T02:58:00Z (shipdeck lock): INC-4711",
        "last log lines",
        "INFO GET /api/orders/29 200",
    ] {
        assert!(s.contains(want), "{want}:\n{s}");
    }
    // j: the next host; PgUp: older log lines; Esc: back.
    key(&mut app, KeyCode::Char('j'));
    assert!(screen(&app, 120, 40).contains("web-3 · production"));
    key(&mut app, KeyCode::Char('k'));
    key(&mut app, KeyCode::PageUp);
    let s = screen(&app, 120, 40);
    assert!(
        s.contains("newer below") && !s.contains("orders/29 "),
        "{s}"
    );
    key(&mut app, KeyCode::Esc);
    assert!(screen(&app, 120, 40).contains("Environments"));
    // What Enter showed before, the last change's output, is `o`.
    let mut app = failed();
    assert_eq!(app.focus, shipdeck::tui::app::Pane::Environments);
    key(&mut app, KeyCode::Char('o'));
    assert!(screen(&app, 120, 40).contains("What failed"));
}

/// A promote of v2 to production that went through: folded to one line.
fn succeeded() -> App {
    let mut app = in_flight();
    for h in [1, 2] {
        for s in [Step::Switch, Step::Restart, Step::Health, Step::Record] {
            step(&mut app, h, s, done());
        }
    }
    engine(
        &mut app,
        Event::ChangeFinished {
            change: "c1".into(),
            outcome: ChangeOutcome::Succeeded,
            summary: "promote v2 to production: 3 hosts switched".into(),
        },
    );
    app.now = at(90);
    app
}

both_sizes!(finished_change_folded, succeeded());

#[test]
fn a_finished_change_folds_to_one_line_with_final_bars_in_its_output() {
    let s = screen(&succeeded(), 120, 40);
    let line = s
        .lines()
        .find(|l| l.contains("promote v2 → production"))
        .unwrap();
    assert!(
        line.starts_with("✓ promote v2 → production done 12.0s"),
        "{line}"
    );
    assert!(line.contains("3 hosts switched"), "{line}");
    // A failed one keeps its pane on a tall screen, one line on 80×24, and
    // its bars are final: full where a host was put back, stopped where it
    // never switched.
    let tall = screen(&failed(), 120, 40);
    assert!(tall.contains("↩ web-1 ██████████ put back"), "{tall}");
    assert!(
        tall.contains("· web-3 █████████╌ stopped: upload"),
        "{tall}"
    );
    assert!(!tall.contains('░'), "no bar still in progress:\n{tall}");
    let small = screen(&failed(), 80, 24);
    assert!(
        small.contains("✗ promote v2 → production FAILED, hosts put back 12.0s"),
        "{small}"
    );
}

#[test]
fn the_pause_shows_its_own_age_not_the_change_s() {
    // The change started at 60 s, paused at 100 s; it is 118 s.
    let s = screen(&canary_paused(), 120, 40);
    assert!(s.contains("deploy v2 → production PAUSED 18.0s"), "{s}");
    assert!(!s.contains("PAUSED 58.0s"), "{s}");
}

#[test]
fn a_breach_names_the_host_as_the_screen_does() {
    let mut app = canary_paused();
    engine(
        &mut app,
        Event::Analysis {
            verdict: Verdict::Breach {
                metric: Metric::ErrorRate,
                value: 0.125,
                threshold: 0.01,
                host: Some("local:hosts/web-1".into()),
                detail: "40 of 320 requests failed on local:hosts/web-1".into(),
            },
            lines: Vec::new(),
        },
    );
    let s = screen(&app, 120, 40);
    assert!(s.contains("canary breach on web-1: error rate"), "{s}");
    assert!(!s.contains("local:hosts/web-1"), "{s}");
}

/// Idle with 60 lines of logs: the logs pane focused.
fn many_log_lines() -> App {
    let mut app = idle();
    for i in 0..60u64 {
        let host = (i % 3) as usize;
        let text = if i % 10 == 7 {
            format!("ERROR payment {i} declined")
        } else {
            format!("INFO GET /api/orders/{i} 200 {}ms", 3 + i % 9)
        };
        app.update(Msg::Monitor(MonitorEvent::Log {
            key: HostKey { env: 1, host },
            line: LogLine {
                host,
                received: at(60 + i),
                error: text.starts_with("ERROR"),
                text,
            },
        }));
    }
    app.focus = shipdeck::tui::app::Pane::Logs;
    app
}

both_sizes!(logs_scrolled_back, {
    let mut app = many_log_lines();
    key(&mut app, KeyCode::PageUp);
    app
});
both_sizes!(logs_filtered_as_typed, {
    let mut app = many_log_lines();
    key(&mut app, KeyCode::Char('/'));
    for c in "ERROR".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    app
});

#[test]
fn the_logs_page_go_to_either_end_and_follow_again() {
    let mut app = many_log_lines();
    let newest = "orders/59 ";
    assert!(screen(&app, 120, 40).contains(newest));
    // PgUp: a page back, paused, the newest out of view; the title counts
    // what is below. Lines that come meanwhile do not move it.
    key(&mut app, KeyCode::PageUp);
    let s = screen(&app, 120, 40);
    assert!(
        !s.contains(newest) && s.contains("PAUSED ·") && s.contains("newer below"),
        "{s}"
    );
    app.update(Msg::Monitor(MonitorEvent::Log {
        key: HostKey { env: 1, host: 0 },
        line: LogLine {
            host: 0,
            received: at(200),
            text: "INFO late line".into(),
            error: false,
        },
    }));
    assert_eq!(screen(&app, 120, 40).lines().nth(12), s.lines().nth(12));
    // g / Home: the oldest line kept; G / End: the newest, following.
    for (top, bottom) in [
        (KeyCode::Char('g'), KeyCode::Char('G')),
        (KeyCode::Home, KeyCode::End),
    ] {
        key(&mut app, top);
        let s = screen(&app, 120, 40);
        assert!(
            s.contains("INFO GET /api/orders 200 12ms"),
            "the first line:\n{s}"
        );
        key(&mut app, bottom);
        let s = screen(&app, 120, 40);
        assert!(
            s.contains("INFO late line") && s.contains("following"),
            "{s}"
        );
    }
    // PgDn back to the newest, then once more: following again; f too.
    key(&mut app, KeyCode::PageUp);
    key(&mut app, KeyCode::PageDown);
    key(&mut app, KeyCode::PageDown);
    assert!(screen(&app, 120, 40).contains("following"));
    key(&mut app, KeyCode::Char('f'));
    assert!(screen(&app, 120, 40).contains("PAUSED"));
    key(&mut app, KeyCode::Char('f'));
    assert!(screen(&app, 120, 40).contains("following"));
}

#[test]
fn the_filter_applies_as_it_is_typed_enter_keeps_it_esc_clears_it() {
    let mut app = many_log_lines();
    key(&mut app, KeyCode::Char('/'));
    for c in "declined".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    let s = screen(&app, 120, 40);
    assert!(
        s.contains("payment 57 declined") && !s.contains("orders/59 "),
        "{s}"
    );
    assert!(s.contains("filtering /declined"), "{s}");
    // Esc while typing: no filter at all.
    key(&mut app, KeyCode::Esc);
    let s = screen(&app, 120, 40);
    assert!(s.contains("orders/59 ") && !s.contains("/declined"), "{s}");
    // Enter keeps it; Esc then clears it.
    key(&mut app, KeyCode::Char('/'));
    for c in "declined".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    key(&mut app, KeyCode::Enter);
    let s = screen(&app, 120, 40);
    assert!(
        s.contains("filter /declined") && !s.contains("orders/59 "),
        "{s}"
    );
    key(&mut app, KeyCode::Esc);
    assert!(screen(&app, 120, 40).contains("orders/59 "));
}

/// The help on a screen tall enough to show it whole.
fn whole_help(app: &mut App) -> String {
    key(app, KeyCode::Char('?'));
    let s = screen(app, 120, 90);
    key(app, KeyCode::Esc);
    s
}

#[test]
fn help_lists_every_key_once_and_says_why_the_others_do_nothing() {
    use shipdeck::tui::keymap::BINDINGS;
    for mut app in [idle(), in_flight(), canary_paused(), with_history()] {
        let s = whole_help(&mut app);
        for b in BINDINGS {
            let label = format!("│{:>8}  ", b.key_label);
            let n = s.matches(&label).count();
            assert_eq!(n, 1, "{} listed {n} times:\n{s}", b.key_label);
        }
    }
    // Idle: c does nothing, and says why; R works.
    let s = whole_help(&mut idle());
    let (now, not_now) = s.split_once("Keys that do nothing now, and why").unwrap();
    assert!(
        now.contains("│       R  roll the selected environment back"),
        "{s}"
    );
    assert!(
        not_now.contains("│       c  cancel the change in flight"),
        "{s}"
    );
    assert!(
        not_now.contains("only while a change of this console runs"),
        "{s}"
    );
    assert!(
        not_now.contains("no change has run in this console yet"),
        "{s}"
    );
    // While a change runs, R says what stops it.
    let s = whole_help(&mut in_flight());
    let (_, not_now) = s.split_once("Keys that do nothing now, and why").unwrap();
    assert!(
        not_now.contains("not rolled back: promote v2 → production is running"),
        "{s}"
    );
}

both_sizes!(help_during_a_change, {
    let mut app = in_flight();
    key(&mut app, KeyCode::Char('?'));
    app
});

#[test]
fn the_footer_shows_only_keys_that_apply_now() {
    // Nothing ran: no `o`; nothing runs: no `c`.
    let s = screen(&idle(), 120, 40);
    assert!(!s.contains("o  output") && !s.contains("c  cancel"), "{s}");
    assert!(s.contains("H  history") && s.contains("Enter  host"), "{s}");
    // A change runs: c, and no d or p (they would be refused).
    let s = screen(&in_flight(), 120, 40);
    let footer = s.lines().last().unwrap();
    assert!(
        footer.contains("c  cancel") && !footer.contains("d  deploy"),
        "{footer}"
    );
    assert!(!footer.contains("R  roll back"), "{footer}");
    // A change ran: its output.
    let footer = screen(&failed(), 120, 40);
    assert!(
        footer.lines().last().unwrap().contains("o  output"),
        "{footer}"
    );
    // The logs focused: no Enter.
    let s = screen(&many_log_lines(), 120, 40);
    assert!(!s.lines().last().unwrap().contains("Enter"), "{s}");
}

#[test]
fn the_snapshots_are_what_no_color_shows() {
    // Every snapshot is drawn with the theme NO_COLOR gives: not one cell
    // has a colour, so every state above reads without it.
    for (name, app) in every_state() {
        let buf = render_to_buffer(&app, 120, 40);
        for cell in buf.content() {
            assert_eq!(cell.fg, ratatui::style::Color::Reset, "{name}");
            assert_eq!(cell.bg, ratatui::style::Color::Reset, "{name}");
        }
    }
}
