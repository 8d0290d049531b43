use std::path::Path;

use super::*;
use crate::model::ReleaseId;

fn config() -> Config {
    Config::parse(Path::new("shipdeck.toml"), &config_text()).unwrap()
}

fn config_text() -> String {
    r#"
[app]
name = "a"
artifact = "dist"
deploy_to = "/srv/a"
[logs]
files = ["log/app.log"]
error_pattern = "ERROR"
[metrics]
prometheus = "http://127.0.0.1:9100/metrics"
latency = 'http_request_duration_seconds{quantile="0.99"}'
[environments.p]
hosts = ["web-1"]
"#
    .to_owned()
}

fn readings(cfg: &Config) -> HostReadings {
    let mut w = Watch::new(cfg, &[(0, "web-1".to_owned())]);
    w.hosts.remove(0)
}

fn offsets(r: &HostReadings) -> Vec<Option<u64>> {
    r.files.iter().map(|f| f.offset).collect()
}

/// A project whose one host `web-1` is a folder (the local transport).
fn local(logs: &str) -> (tempfile::TempDir, Config, Fleet) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("web-1")).unwrap();
    let toml = format!(
        "[app]\nname = \"a\"\nartifact = \"dist\"\ndeploy_to = \"/srv/a\"\n[logs]\n{logs}\n[environments.p]\nhosts = [\"local:web-1\"]\n"
    );
    let cfg = Config::parse(&dir.path().join("shipdeck.toml"), &toml).unwrap();
    let fleet = Fleet::new(cfg.environments[0].hosts.clone(), &cfg.ssh.settings(false));
    (dir, cfg, fleet)
}

fn env(_: usize) -> HookEnv {
    HookEnv {
        env: "p".into(),
        host: "web-1".into(),
        release: ReleaseId::parse("v1").unwrap(),
        previous: None,
        deploy_to: String::new(),
        release_dir: String::new(),
        host_vars: Default::default(),
        slot: None,
    }
}

/// Polls `until` for up to ten seconds.
fn eventually(what: &str, mut until: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !until() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_first_read_sets_where_the_log_starts_and_later_ones_count_errors() {
    let cfg = config();
    let mut r = readings(&cfg);
    assert_eq!(
        read_output(&cfg, &mut r, "\n@@shipdeck-file 0 100\n\n@@shipdeck-end\n"),
        None
    );
    assert_eq!(offsets(&r), vec![Some(100)]);
    // Two whole lines and a half-written third: the third waits.
    let out = "\n@@shipdeck-file 0 160\nok 1\nERROR boom\nERR\n@@shipdeck-end\n";
    assert_eq!(read_output(&cfg, &mut r, out), None);
    assert_eq!(r.error_lines, 1);
    assert_eq!(offsets(&r), vec![Some(100 + 16)]);
    assert_eq!(r.last_lines, ["ok 1", "ERROR boom"]);
    // A padded count (`wc` on some systems) is read all the same.
    read_output(
        &cfg,
        &mut r,
        "\n@@shipdeck-file 0    116\n\n@@shipdeck-end\n",
    );
    assert_eq!(offsets(&r), vec![Some(116)]);
}

#[test]
fn a_rotated_log_is_read_from_its_start_and_a_word_is_picked_up() {
    let cfg = config();
    let mut r = readings(&cfg);
    read_output(&cfg, &mut r, "\n@@shipdeck-file 0 500\n\n@@shipdeck-end\n");
    let out = "\n@@shipdeck-file 0 10\nERROR new\n\n@@shipdeck-end\n\n@@shipdeck-signal {\"change\":\"c\"}\n";
    assert_eq!(
        read_output(&cfg, &mut r, out).as_deref(),
        Some("{\"change\":\"c\"}")
    );
    assert_eq!(r.error_lines, 1);
    assert_eq!(offsets(&r), vec![Some(10)]);
}

/// Before, `wc -c < missing` gave 0 and a mark, so a log file that does
/// not exist read as a clean, followed log.
#[test]
fn a_missing_log_file_is_not_followed_and_is_read_whole_once_it_appears() {
    let (dir, cfg, fleet) = local("files = [\"log/app.log\"]\nerror_pattern = \"ERROR\"");
    let mut watch = Watch::new(&cfg, &[(0, "web-1".to_owned())]);
    for _ in 0..2 {
        assert_eq!(tick_all(&cfg, &fleet, &mut watch, env), None);
    }
    let w = watch.group(&[0]);
    let h = &w.hosts[0];
    assert_eq!(h.error_lines_per_min, None);
    let why = h.gaps.logs.as_deref().unwrap_or_default();
    assert!(
        why.contains("web-1/log/app.log") && why.contains("missing or unreadable on web-1"),
        "{why}"
    );
    // Created during the pause: everything in it is new.
    std::fs::create_dir(dir.path().join("web-1/log")).unwrap();
    std::fs::write(dir.path().join("web-1/log/app.log"), "ERROR one\nok\n").unwrap();
    tick_all(&cfg, &fleet, &mut watch, env);
    let w = watch.group(&[0]);
    assert!(
        w.hosts[0].error_lines_per_min.is_some_and(|v| v > 0.0),
        "{w:?}"
    );
    assert_eq!(watch.hosts[0].error_lines, 1);
    assert_eq!(watch.last_lines("web-1"), ["ERROR one", "ok"]);
    // Then followed from where it was read to.
    std::fs::write(
        dir.path().join("web-1/log/app.log"),
        "ERROR one\nok\nERROR two\n",
    )
    .unwrap();
    tick_all(&cfg, &fleet, &mut watch, env);
    assert_eq!(watch.hosts[0].error_lines, 2);
}

#[test]
fn without_a_pattern_there_are_no_error_lines_and_it_says_why() {
    let (_dir, cfg, fleet) = local("files = [\"app.log\"]");
    let mut watch = Watch::new(&cfg, &[(0, "web-1".to_owned())]);
    tick_all(&cfg, &fleet, &mut watch, env);
    let w = watch.group(&[0]);
    assert_eq!(w.hosts[0].error_lines_per_min, None);
    assert!(
        w.hosts[0]
            .gaps
            .logs
            .as_deref()
            .is_some_and(|g| g.contains("logs.error_pattern is not set")),
        "{w:?}"
    );
}

fn scraped(requests: f64, errors: f64, latency: Option<Result<f64, String>>) -> Reading {
    Reading {
        probe: None,
        metrics: Some(Ok(Scraped {
            app: Ok(AppSample {
                at: SystemTime::now(),
                requests_total: requests,
                errors_total: errors,
            }),
            latency: latency.map(|l| l.map(LatencyRead::Seconds)),
            note: None,
        })),
        stdout: Ok(String::new()),
    }
}

fn failed_scrape() -> Reading {
    Reading {
        probe: None,
        metrics: Some(Err(
            "the metrics page of web-1 could not be read: connection refused".into(),
        )),
        stdout: Ok(String::new()),
    }
}

fn window(cfg: &Config, r: &HostReadings) -> HostWindow {
    let watch = Watch::new(cfg, &[]);
    r.window(&watch.logs, watch.quantile, 1.0)
}

#[test]
fn counters_reset_by_a_restart_keep_what_was_served_on_both_sides() {
    let cfg = config();
    let mut r = readings(&cfg);
    for (requests, errors) in [(1000.0, 10.0), (1100.0, 40.0), (20.0, 10.0), (60.0, 30.0)] {
        apply(&cfg, &mut r, scraped(requests, errors, Some(Ok(0.1))));
    }
    // 100 + 20 + 40 requests, 30 + 10 + 20 errors: a crash loop is not "no data".
    assert_eq!(
        window(&cfg, &r).requests,
        Some(Requests {
            total: 160.0,
            errors: 60.0
        })
    );
}

#[test]
fn metrics_that_stop_answering_are_missing_not_judged_on_old_readings() {
    let cfg = config();
    let mut r = readings(&cfg);
    apply(&cfg, &mut r, scraped(0.0, 0.0, Some(Ok(0.120))));
    apply(&cfg, &mut r, scraped(100.0, 0.0, Some(Ok(0.140))));
    // One lost scrape is a blip: the next one catches up.
    apply(&cfg, &mut r, failed_scrape());
    let w = window(&cfg, &r);
    assert!(w.requests.is_some());
    assert!(
        w.app_latency_ms.is_some_and(|ms| (ms - 130.0).abs() < 1e-9),
        "{w:?}"
    );
    // Two in a row: the app may have died, and its old numbers prove nothing.
    apply(&cfg, &mut r, failed_scrape());
    let w = window(&cfg, &r);
    assert_eq!((w.requests, w.app_latency_ms), (None, None));
    assert!(
        w.gaps
            .requests
            .as_deref()
            .is_some_and(|g| g.contains("connection refused")),
        "{w:?}"
    );
    // It answers again: judged again, on everything it counted.
    apply(&cfg, &mut r, scraped(300.0, 3.0, Some(Ok(0.150))));
    let w = window(&cfg, &r);
    assert_eq!(
        w.requests,
        Some(Requests {
            total: 300.0,
            errors: 3.0
        })
    );
}

// Long on purpose: one pause from the first scrape to the verdict, each step
// reading the windows the steps before it filled.
#[test]
fn histogram_latency_is_the_quantile_of_what_grew_during_the_pause() {
    let toml = config_text().replace(
        r#"latency = 'http_request_duration_seconds{quantile="0.99"}'"#,
        r#"latency = 'histogram_quantile(0.9, http_request_duration_seconds{route="/users/{id}"})'"#,
    );
    let cfg = Config::parse(Path::new("shipdeck.toml"), &toml).unwrap();
    let mut r = readings(&cfg);
    let page = |fast: u32, slow: u32| {
        format!(
            "# TYPE http_request_duration_seconds histogram\n\
             http_request_duration_seconds_bucket{{route=\"/users/{{id}}\",le=\"0.1\"}} {fast}\n\
             http_request_duration_seconds_bucket{{route=\"/users/{{id}}\",le=\"0.5\"}} {}\n\
             http_request_duration_seconds_bucket{{route=\"/users/{{id}}\",le=\"+Inf\"}} {}\n",
            fast + slow,
            fast + slow
        )
    };
    let reading = |fast, slow| {
        let query = cfg.metrics.latency.as_ref().unwrap();
        let read = prometheus::latency(&prometheus::parse(&page(fast, slow)), query);
        let mut r = scraped(0.0, 0.0, None);
        if let Some(Ok(s)) = &mut r.metrics {
            s.latency = Some(read);
        }
        r
    };
    // Before the pause: 900 fast requests. During it: 100 slow ones.
    apply(&cfg, &mut r, reading(900, 0));
    let w = window(&cfg, &r);
    assert_eq!(w.app_latency_ms, None, "one reading has no growth yet");
    apply(&cfg, &mut r, reading(900, 100));
    let w = window(&cfg, &r);
    // The 90th of 100 slow requests: 100 ms + 400 ms * 90/100.
    assert!(
        w.app_latency_ms.is_some_and(|ms| (ms - 460.0).abs() < 1e-6),
        "{w:?}"
    );
    // A quiet pause observes nothing: no reading, and it says so.
    let mut quiet = readings(&cfg);
    apply(&cfg, &mut quiet, reading(900, 0));
    apply(&cfg, &mut quiet, reading(900, 0));
    let w = window(&cfg, &quiet);
    assert_eq!(w.app_latency_ms, None);
    assert_eq!(
        w.gaps.app_latency.as_deref(),
        Some("no latency reading from web-1: no request was observed in the window")
    );
}

#[test]
fn a_latency_that_never_comes_says_why() {
    let cfg = config();
    let mut r = readings(&cfg);
    let why = "no latency reading from web-1: http_request_duration_seconds is a histogram";
    for _ in 0..2 {
        apply(&cfg, &mut r, scraped(0.0, 0.0, Some(Err(why.into()))));
    }
    let w = window(&cfg, &r);
    assert_eq!(w.app_latency_ms, None);
    assert_eq!(w.gaps.app_latency.as_deref(), Some(why));
}

#[test]
fn logs_command_is_followed_for_the_pause_and_stopped_with_it() {
    // `tail_script` runs the command with `exec`, so one program: a shell.
    let (dir, cfg, fleet) = local(
        r#"command = '''sh -c 'printf "ERROR from before the pause\n"; echo $$ > follow.pid; exec tail -n 0 -f live.log' '''
error_pattern = "ERROR""#,
    );
    let root = dir.path().join("web-1");
    std::fs::write(root.join("live.log"), "").unwrap();
    let mut watch = Watch::new(&cfg, &[(0, "web-1".to_owned())]);
    let w = watch.group(&[0]);
    assert!(
        w.hosts[0]
            .gaps
            .logs
            .as_deref()
            .is_some_and(|g| g.contains("not followed yet")),
        "{w:?}"
    );
    tick_all(&cfg, &fleet, &mut watch, env);
    eventually("the follow to get past its backlog", || {
        watch.group(&[0]).hosts[0].error_lines_per_min.is_some()
    });
    let mut live = std::fs::OpenOptions::new()
        .append(true)
        .open(root.join("live.log"))
        .unwrap();
    std::io::Write::write_all(&mut live, b"ERROR boom\nINFO fine\n").unwrap();
    eventually("the new lines", || {
        watch.last_lines("web-1").last().map(String::as_str) == Some("INFO fine")
    });
    // The backlog is shown, never counted.
    assert_eq!(
        watch.last_lines("web-1"),
        ["ERROR from before the pause", "ERROR boom", "INFO fine"]
    );
    let follow = watch.hosts[0].command.as_ref().unwrap();
    assert_eq!(follow.lock().error_lines, 1);
    assert!(
        watch.group(&[0]).hosts[0]
            .error_lines_per_min
            .is_some_and(|v| v > 0.0)
    );
    // The pause ends: the command goes with it.
    let pid = std::fs::read_to_string(root.join("follow.pid")).unwrap();
    let proc_dir = Path::new("/proc").join(pid.trim());
    assert!(proc_dir.exists(), "{}", proc_dir.display());
    drop(watch);
    eventually("the command to stop", || !proc_dir.exists());
}

#[test]
fn a_logs_command_that_fails_is_not_a_quiet_log() {
    let (_dir, cfg, fleet) = local("command = \"false\"\nerror_pattern = \"ERROR\"");
    let mut watch = Watch::new(&cfg, &[(0, "web-1".to_owned())]);
    tick_all(&cfg, &fleet, &mut watch, env);
    eventually("the command to end", || {
        watch.group(&[0]).hosts[0]
            .gaps
            .logs
            .as_deref()
            .is_some_and(|g| g.contains("exited with status 1"))
    });
    let w = watch.group(&[0]);
    assert_eq!(w.hosts[0].error_lines_per_min, None);
    assert!(
        w.hosts[0]
            .gaps
            .logs
            .as_deref()
            .is_some_and(|g| g.contains("logs.command `false`")),
        "{w:?}"
    );
}
