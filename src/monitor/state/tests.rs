use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::*;

const A: HostKey = HostKey { env: 0, host: 0 };
const B: HostKey = HostKey { env: 0, host: 1 };
const C: HostKey = HostKey { env: 1, host: 0 };

fn t(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
}

fn log(key: HostKey, text: &str, error: bool, at: SystemTime) -> MonitorEvent {
    MonitorEvent::Log {
        key,
        line: LogLine {
            host: key.host,
            received: at,
            text: text.to_owned(),
            error,
        },
    }
}

fn health(key: HostKey, at: SystemTime, status: HealthStatus, ms: Option<u64>) -> MonitorEvent {
    MonitorEvent::Health {
        key,
        sample: HealthSample {
            at,
            status,
            latency: ms.map(Duration::from_millis),
            detail: String::new(),
        },
    }
}

fn state() -> MonitorState {
    MonitorState::with_shape(&[2, 1], 5_000, SAMPLE_WINDOW)
}

fn texts(lines: &[(HostKey, &LogLine)]) -> Vec<String> {
    lines.iter().map(|(_, l)| l.text.clone()).collect()
}

#[test]
fn the_log_ring_is_bounded() {
    let mut s = state();
    for i in 0..10_000 {
        s.apply(log(A, &format!("line {i}"), false, t(0)));
    }
    let h = s.host(A).unwrap();
    assert_eq!(h.log_len(), 5_000);
    assert_eq!(h.log_lines().next().unwrap().text, "line 5000");
    assert_eq!(h.log_lines().last().unwrap().text, "line 9999");
    assert_eq!(s.last_log_seq(), 10_000);
}

#[test]
fn merged_logs_keep_arrival_order_filter_and_limit() {
    let mut s = state();
    s.apply(log(A, "a1 GET /", false, t(0)));
    s.apply(log(B, "b1 GET /", false, t(0)));
    s.apply(log(C, "c1 ERROR boom", true, t(0)));
    s.apply(log(A, "a2 POST /login", false, t(0)));
    s.apply(log(B, "b2 error: disk", true, t(0)));
    let all = s.logs(None, None, 100);
    assert_eq!(
        texts(&all),
        [
            "a1 GET /",
            "b1 GET /",
            "c1 ERROR boom",
            "a2 POST /login",
            "b2 error: disk"
        ]
    );
    assert_eq!(all[2].0, C);
    // The newest `limit`, still oldest first.
    assert_eq!(
        texts(&s.logs(None, None, 2)),
        ["a2 POST /login", "b2 error: disk"]
    );
    assert_eq!(
        texts(&s.logs(Some(A), None, 100)),
        ["a1 GET /", "a2 POST /login"]
    );
    // Smart case: lower case ignores case, upper case does not.
    assert_eq!(
        texts(&s.logs(None, Some("error"), 100)),
        ["c1 ERROR boom", "b2 error: disk"]
    );
    assert_eq!(texts(&s.logs(None, Some("ERROR"), 100)), ["c1 ERROR boom"]);
    assert_eq!(texts(&s.logs(Some(B), Some("get"), 1)), ["b1 GET /"]);
    assert_eq!(
        texts(&s.logs(None, Some("("), 100)),
        Vec::<String>::new(),
        "literal, not a regex"
    );
    assert_eq!(
        texts(&s.logs(None, Some(""), 1)),
        ["b2 error: disk"],
        "empty filter: all"
    );
    assert!(s.logs(None, None, 0).is_empty());
    assert!(
        s.logs(Some(HostKey { env: 9, host: 9 }), None, 10)
            .is_empty()
    );
}

#[test]
fn a_paused_view_stays_put_and_pages_back() {
    let mut s = state();
    for i in 0..10 {
        s.apply(log(
            if i % 2 == 0 { A } else { B },
            &format!("{i}"),
            false,
            t(0),
        ));
    }
    let pause = s.last_log_seq() + 1;
    s.apply(log(A, "later", false, t(1)));
    let held: Vec<String> = s
        .logs_before(None, None, 3, Some(pause))
        .iter()
        .map(|e| e.line.text.clone())
        .collect();
    assert_eq!(held, ["7", "8", "9"]);
    let page = s.logs_before(
        None,
        None,
        3,
        Some(s.logs_before(None, None, 3, Some(pause))[0].seq),
    );
    assert_eq!(
        page.iter()
            .map(|e| e.line.text.as_str())
            .collect::<Vec<_>>(),
        ["4", "5", "6"]
    );
}

#[test]
fn unknown_health_is_never_healthy() {
    let mut s = state();
    assert_eq!(s.host(A).unwrap().health_status(), None);
    s.apply(health(A, t(0), HealthStatus::Healthy, Some(3)));
    assert_eq!(
        s.host(A).unwrap().health_status(),
        Some(HealthStatus::Healthy)
    );
    s.apply(health(A, t(2), HealthStatus::Unknown, None));
    let h = s.host(A).unwrap();
    assert_eq!(h.health_status(), Some(HealthStatus::Unknown));
    assert_eq!(h.consecutive_failures, 1, "unknown counts against the host");
    s.apply(health(A, t(4), HealthStatus::Unhealthy, Some(9)));
    assert_eq!(s.host(A).unwrap().consecutive_failures, 2);
    s.apply(health(A, t(6), HealthStatus::Healthy, Some(4)));
    assert_eq!(s.host(A).unwrap().consecutive_failures, 0);
    // A host that dropped is unknown, whatever its last probe said.
    s.apply(MonitorEvent::Disconnected {
        key: A,
        reason: "refused".into(),
        retry_in: Duration::from_secs(1),
    });
    let h = s.host(A).unwrap();
    assert_eq!(h.health_status(), Some(HealthStatus::Unknown));
    assert_eq!(h.connected, Some(false));
    assert_eq!(h.disconnect_reason.as_deref(), Some("refused"));
    assert_eq!(h.latency_ms(), [3, 0, 9, 4]);
    assert_eq!(h.latency_ms_or_absent(), [Some(3), None, Some(9), Some(4)]);
    s.apply(MonitorEvent::Connected { key: A });
    let h = s.host(A).unwrap();
    assert_eq!(h.health_status(), Some(HealthStatus::Healthy));
    assert_eq!(h.disconnect_reason, None);
}

#[test]
fn sample_windows_are_pruned_by_time_and_count() {
    let mut s = MonitorState::with_shape(&[1], 10, Duration::from_secs(600));
    for i in 0..400 {
        s.apply(health(A, t(i * 2), HealthStatus::Healthy, Some(1)));
    }
    let h = s.host(A).unwrap();
    // Newest at 798 s: samples from 198 s on are within 10 minutes.
    assert_eq!(h.health_samples().count(), 301);
    assert_eq!(h.health_samples().next().unwrap().at, t(198));
    // A very short interval is bounded by count.
    for i in 0..(MAX_WINDOW_SAMPLES as u64 + 100) {
        s.apply(MonitorEvent::System {
            key: A,
            sample: SystemSample {
                at: t(1_000) + Duration::from_millis(i),
                cpu_pct: Some(5.0),
                mem_used: 1,
                mem_total: 2,
                load1: 0.5,
            },
        });
    }
    let h = s.host(A).unwrap();
    assert_eq!(h.system_samples().count(), MAX_WINDOW_SAMPLES);
    assert_eq!(h.cpu_pct(), Some(5.0));
    assert_eq!(h.memory(), Some((1, 2)));
    assert_eq!(h.load1(), Some(0.5));
}

#[test]
fn error_lines_per_minute_count_the_last_minute() {
    let mut s = state();
    for i in 0..30 {
        s.apply(log(A, "ERROR x", true, t(i)));
        s.apply(log(A, "fine", false, t(i)));
    }
    let h = s.host(A).unwrap();
    assert_eq!(h.error_lines_per_min(t(29)), 30.0);
    assert_eq!(h.error_lines_per_min(t(59)), 30.0);
    assert_eq!(h.error_lines_per_min(t(75)), 14.0, "16..=29 remain");
    assert_eq!(h.error_lines_per_min(t(500)), 0.0);
    // A flood stays in a fixed number of slots.
    let mut s = state();
    for i in 0..100_000u64 {
        s.apply(log(B, "ERROR", true, t(i / 1_000)));
    }
    assert_eq!(s.host(B).unwrap().error_lines_per_min(t(99)), 60_000.0);
}

#[test]
fn app_rates_come_from_counter_deltas() {
    let mut s = state();
    let app = |at, r, e| MonitorEvent::App {
        key: A,
        sample: AppSample {
            at,
            requests_total: r,
            errors_total: e,
        },
    };
    s.apply(app(t(0), 1_000.0, 10.0));
    assert_eq!(s.host(A).unwrap().request_rate(), None);
    s.apply(app(t(5), 1_500.0, 15.0));
    let h = s.host(A).unwrap();
    assert_eq!(h.request_rate(), Some(100.0));
    assert_eq!(h.error_ratio(), Some(0.01));
}

#[test]
fn state_and_unknown_hosts() {
    let mut s = state();
    let view = HostView {
        rollback_ready: true,
        ..Default::default()
    };
    s.apply(MonitorEvent::State {
        key: C,
        state: view.clone(),
    });
    assert_eq!(s.host(C).unwrap().view.as_ref(), Some(&view));
    // Events for hosts the config does not have are ignored.
    s.apply(log(HostKey { env: 5, host: 0 }, "x", false, t(0)));
    assert_eq!(s.last_log_seq(), 0);
    assert_eq!(s.hosts().count(), 3);
    s.apply(MonitorEvent::LogsDown {
        key: B,
        reason: "gone".into(),
    });
    assert_eq!(s.host(B).unwrap().logs_down.as_deref(), Some("gone"));
    s.apply(log(B, "back", false, t(0)));
    assert_eq!(s.host(B).unwrap().logs_down, None);
}

/// 50 hosts x 5,000 lines: the newest 100 merged, and a filter that matches
/// little, so every line is read. Timings are printed; the bounds are loose
/// enough for a debug build on a slow machine.
#[test]
fn merged_logs_are_fast_on_a_full_fleet() {
    let mut s = MonitorState::with_shape(&[50], 5_000, SAMPLE_WINDOW);
    for i in 0..250_000u64 {
        let key = HostKey {
            env: 0,
            host: (i % 50) as usize,
        };
        let text = format!(
            "2026-01-01T00:00:00Z INFO request id={i} path=/api/v1/items status=200 took=12ms"
        );
        s.apply(log(key, &text, false, t(0)));
    }
    s.apply(log(A, "rare needle", false, t(0)));
    let started = Instant::now();
    let newest = s.logs(None, None, 100);
    let plain = started.elapsed();
    assert_eq!(newest.len(), 100);
    assert_eq!(newest.last().unwrap().1.text, "rare needle");
    let started = Instant::now();
    let found = s.logs(None, Some("needle"), 100);
    let filtered = started.elapsed();
    assert_eq!(found.len(), 1);
    let started = Instant::now();
    let one = s.logs(Some(B), Some("status=200"), 100);
    let one_host = started.elapsed();
    assert_eq!(one.len(), 100);
    eprintln!(
        "logs over 50 x 5,000 lines: newest 100 in {plain:?}; rare filter in {filtered:?}; one host filtered in {one_host:?}"
    );
    assert!(plain < Duration::from_millis(50), "{plain:?}");
    assert!(filtered < Duration::from_millis(2_000), "{filtered:?}");
}

#[test]
fn a_paused_view_counts_the_lines_that_came_since() {
    let mut s = state();
    for i in 0..5 {
        s.apply(log(A, &format!("INFO a {i}"), false, t(0)));
    }
    let pause = s.last_log_seq() + 1;
    assert_eq!(s.count_logs_since(None, None, pause), 0);
    s.apply(log(A, "INFO a 5", false, t(1)));
    s.apply(log(B, "ERROR b", true, t(1)));
    s.apply(log(C, "INFO c", false, t(1)));
    assert_eq!(s.count_logs_since(None, None, pause), 3);
    assert_eq!(s.count_logs_since(Some(A), None, pause), 1);
    assert_eq!(s.count_logs_since(None, Some("error"), pause), 1);
    assert_eq!(s.count_logs_since(None, None, 1), 8);
}

#[test]
fn a_large_fleet_shares_the_held_lines_and_a_small_one_keeps_buffer_lines() {
    let config = |hosts: usize, buffer_lines: usize| {
        let list: Vec<String> = (0..hosts).map(|i| format!("\"local:h/{i}\"")).collect();
        let toml = format!(
            "[app]\nname = \"a\"\nartifact = \"d\"\ndeploy_to = \"/srv/a\"\n\n[logs]\nfiles = [\"log\"]\nbuffer_lines = {buffer_lines}\n\n[environments.production]\nhosts = [{}]\n",
            list.join(", ")
        );
        crate::config::Config::parse(std::path::Path::new("/x/shipdeck.toml"), &toml).unwrap()
    };
    assert_eq!(super::log_lines_per_host(&config(50, 5_000)), 5_000);
    assert_eq!(super::log_lines_per_host(&config(1_000, 5_000)), 250);
    assert_eq!(super::log_lines_per_host(&config(1_000, 50)), 50);
    assert_eq!(
        super::log_lines_per_host(&config(10_000, 5_000)),
        100,
        "each host keeps a screenful however large the fleet"
    );
    // The rings hold that many, no more.
    let cfg = config(1_000, 5_000);
    let mut s = MonitorState::new(&cfg);
    let key = HostKey { env: 0, host: 7 };
    for i in 0..1_000 {
        s.apply(log(key, &format!("line {i}"), false, t(i)));
    }
    assert_eq!(s.host(key).unwrap().log_len(), 250);
}
