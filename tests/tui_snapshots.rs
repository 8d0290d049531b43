//! The whole console rendered into ratatui's TestBackend at 80×24 and
//! 120×40, fed from scripted engine and monitor events; insta keeps what
//! each state looks like, so any change to the screen is reviewed.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use shipdeck::config::Config;
use shipdeck::engine::{ChangeKind, ChangeOutcome, Event, Step, StepStatus};
use shipdeck::model::{Action, HealthVerdict, HistoryRecord, Operator, Outcome, ReleaseId};
use shipdeck::monitor::{
    HealthSample, HealthStatus, HostKey, HostView, LogLine, MonitorEvent, SystemSample,
};
use shipdeck::store::Manifest;
use shipdeck::tui::{App, Msg, render_to_buffer};

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

fn at(secs: u64) -> SystemTime {
    // 2026-11-22 03:00:00 UTC
    UNIX_EPOCH + Duration::from_secs(1_795_316_400 + secs)
}

fn id(s: &str) -> ReleaseId {
    ReleaseId::parse(s).unwrap()
}

fn record(release: &str, env: &str) -> HistoryRecord {
    HistoryRecord {
        time: "2026-11-22T02:00:00Z".into(),
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
        health: HealthVerdict::Passed,
        duration_ms: 10,
        message: None,
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
    let config = Arc::new(Config::parse(Path::new("/demo/shipdeck.toml"), CONFIG).unwrap());
    let mut app = App::new(config, false);
    app.now = at(60);
    app.update(Msg::Releases(["v1", "v2", "v3"].map(manifest).to_vec()));
    let hosts = [(0, 1), (1, 3)];
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
    app.update(Msg::ChangeDone(Err(
        "promote v2 to production stopped: 1 host failed; every host runs what it ran before"
            .into(),
    )));
    app.now = at(80);
    app
}

fn key(app: &mut App, code: KeyCode) -> Vec<shipdeck::tui::Effect> {
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
    assert!(s.contains("R  ROLLBACK"), "{s}");
    assert!(s.contains("? help") || s.contains("?  help"), "{s}");
}

#[test]
fn r_rolls_the_selected_environment_back_at_once_and_says_what_it_does() {
    let mut app = idle();
    let effects = key(&mut app, KeyCode::Char('R'));
    assert_eq!(
        effects,
        [shipdeck::tui::Effect::Rollback {
            env: "staging".into()
        }]
    );
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
    assert!(screen(&app, 80, 24).contains("A change is running."));
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
