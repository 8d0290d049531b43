use std::path::{Path, PathBuf};

use super::*;
use crate::model::canary;

fn fixtures(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/config")
        .join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn full_example_resolves() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config/valid/full.toml");
    let cfg = Config::load(&path).unwrap();
    assert_eq!(cfg.app.name, "hello");
    assert_eq!(cfg.app.artifact, path.parent().unwrap().join("dist"));
    assert_eq!(cfg.app.shared, ["log", ".env"]);
    assert_eq!(
        cfg.ssh.identity.as_deref(),
        Some(path.parent().unwrap().join("keys/id_ed25519").as_path())
    );
    assert_eq!(cfg.environment_names(), ["staging", "production"]);
    let prod = cfg.environment("production").unwrap();
    assert_eq!(prod.requires.as_deref(), Some("staging"));
    assert_eq!(
        prod.strategy,
        Strategy::Rolling {
            batch: HostCount::Percent(50),
            max_failures: 1
        }
    );
    let targets: Vec<_> = prod
        .hosts
        .iter()
        .map(|h| match &h.target {
            Target::Ssh(t) => (t.to_string(), h.deploy_to.clone()),
            Target::Local { .. } => panic!("not local"),
        })
        .collect();
    assert_eq!(
        targets,
        [
            ("deploy@web-1.example.com:22".into(), "/srv/hello".into()),
            ("deploy@web-2.example.com:2222".into(), "/srv/hello".into()),
            ("ops@web-3.example.com:22".into(), "/srv/hello".into()),
            ("deploy@web-4.example.com:22".into(), "/opt/hello".into()),
        ]
    );
    let health = cfg.health.clone().unwrap();
    assert_eq!(
        health.probe,
        Probe::Http("http://127.0.0.1:8080/healthz".into())
    );
    assert_eq!(
        prod.hosts[0].health_http,
        Some(HttpTarget {
            url: "http://127.0.0.1:8080/healthz".into(),
            host: "127.0.0.1".into(),
            port: 8080,
            path: "/healthz".into()
        })
    );
    assert_eq!(health.healthy_after, 3);
    assert_eq!(health.gate, Duration::from_secs(60));
    assert!(
        cfg.logs
            .error_pattern
            .unwrap()
            .is_match("thread panicked at")
    );
}

#[test]
fn minimal_example_takes_defaults_and_local_hosts() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config/valid/minimal.toml");
    let cfg = Config::load(&path).unwrap();
    assert_eq!(cfg.app.keep_releases, DEFAULT_KEEP_RELEASES);
    assert!(cfg.health.is_none());
    let dev = &cfg.environments[0];
    assert_eq!(dev.strategy, Strategy::AllAtOnce);
    let dir = path.parent().unwrap().join("hosts/dev-1");
    assert_eq!(dev.hosts[0].target, Target::Local { dir: dir.clone() });
    assert_eq!(dev.hosts[0].deploy_to, dir.to_string_lossy());
}

/// Each invalid fixture starts with `# expect LINE:COL: message fragment`.
#[test]
fn every_invalid_fixture_fails_where_it_says() {
    let files = fixtures("invalid");
    assert!(files.len() >= 15, "fixtures went missing");
    for path in files {
        let source = std::fs::read_to_string(&path).unwrap();
        let expect = source
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect "))
            .unwrap_or_else(|| panic!("{}: no `# expect` line", path.display()));
        let (pos, fragment) = expect
            .split_once(": ")
            .unwrap_or((expect.trim_end_matches(':'), ""));
        let (line, col) = pos.split_once(':').unwrap();
        let err = match Config::load(&path) {
            Ok(_) => panic!("{} was accepted", path.display()),
            Err(e) => e,
        };
        let shown = err.to_string();
        let want = format!("{}:{line}:{col}: ", path.display());
        assert!(
            shown.starts_with(&want),
            "{shown}\n  expected it to start with {want}"
        );
        assert!(
            shown.contains(fragment.trim()),
            "{shown}\n  expected: {fragment}"
        );
    }
}

#[test]
fn a_host_may_be_given_a_name_to_be_shown_by() {
    let src = r#"
[app]
name = "hello"
artifact = "dist"
deploy_to = "/srv/hello"

[environments.production]
hosts = ["root@127.0.0.1:2201", { address = "root@127.0.0.1:2202", name = "web-2" },
         { address = "local:hosts/web-3", name = "web-3 (eu)" }]
"#;
    let cfg = Config::parse(Path::new("/x/shipdeck.toml"), src).unwrap();
    let hosts = &cfg.environments[0].hosts;
    let shown: Vec<&str> = hosts.iter().map(|h| h.shown()).collect();
    assert_eq!(shown, ["root@127.0.0.1:2201", "web-2", "web-3 (eu)"]);
    // What the hosts' records name it by stays the address.
    assert_eq!(hosts[1].name, "root@127.0.0.1:2202");
    assert_eq!(hosts[0].label, None);
}

#[test]
fn per_host_vars_fill_the_health_and_metrics_urls() {
    let src = r#"
[app]
name = "demo"
artifact = "dist"
deploy_to = "/srv/demo"

[health]
http = "http://127.0.0.1:{port}/healthz"

[metrics]
prometheus = "http://127.0.0.1:{port}/metrics"

[environments.dev]
hosts = [{ address = "local:a", vars = { port = "8101" } }, { address = "local:b", vars = { port = "8102" } }]
"#;
    let cfg = Config::parse(Path::new("/x/shipdeck.toml"), src).unwrap();
    let hosts = &cfg.environments[0].hosts;
    assert_eq!(hosts[1].health_http.as_ref().unwrap().port, 8102);
    assert_eq!(
        hosts[0].metrics.as_ref().unwrap().url,
        "http://127.0.0.1:8101/metrics"
    );
    assert_eq!(hosts[0].vars.get("port").map(String::as_str), Some("8101"));
    let missing = src.replace(", vars = { port = \"8102\" }", "");
    let err = Config::parse(Path::new("/x/shipdeck.toml"), &missing)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("/x/shipdeck.toml:8:8: host \"local:b\" has no var \"port\""),
        "{err}"
    );
}

#[test]
fn a_missing_file_is_named() {
    let err = Config::load(Path::new("/nonexistent/shipdeck.toml")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("/nonexistent/shipdeck.toml: cannot read"),
        "{err}"
    );
}

#[test]
fn addresses() {
    assert_eq!(
        parse_address("deploy@web-1:2222").unwrap(),
        Address {
            user: Some("deploy".into()),
            host: "web-1".into(),
            port: Some(2222)
        }
    );
    assert_eq!(
        parse_address("[::1]:22").unwrap(),
        Address {
            user: None,
            host: "::1".into(),
            port: Some(22)
        }
    );
    for bad in ["", "@web", "web;id", "web:0", "a b", "web:$(id)", "[::1"] {
        assert!(parse_address(bad).is_err(), "{bad:?}");
    }
}

fn progressive() -> Config {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config/valid/progressive.toml");
    Config::load(&path).unwrap()
}

/// The `[app]` every inline config below shares.
const APP: &str = r#"
[app]
name = "hello"
artifact = "dist"
deploy_to = "/srv/hello"
"#;

fn parse(rest: &str) -> Result<Config, String> {
    Config::parse(Path::new("/x/shipdeck.toml"), &format!("{APP}{rest}")).map_err(|e| e.to_string())
}

#[test]
fn canary_steps_and_thresholds_resolve() {
    let cfg = progressive();
    let prod = cfg.environment("production").unwrap();
    let Strategy::Canary { steps, thresholds } = &prod.strategy else {
        panic!("{:?}", prod.strategy)
    };
    let steps: Vec<String> = steps.iter().map(ToString::to_string).collect();
    assert_eq!(steps, ["1", "pause 1m", "25%", "pause", "100%"]);
    assert_eq!(
        *thresholds,
        Thresholds {
            max_error_rate: Some(0.01),
            max_latency_ms: Some(250),
            // Written as integers: `max_relative = 2`, `max_error_lines_per_min = 5`.
            max_relative: Some(2.0),
            min_health_pass_rate: Some(0.95),
            max_error_lines_per_min: Some(5.0),
            min_requests: 20,
            // [metrics] with a latency, and [logs] with a pattern.
            expects: canary::Expects {
                requests: true,
                error_lines: true,
                app_latency: true,
            },
            ..Thresholds::default()
        }
    );
}

/// What the analysis must get, from the sections that are set: a source
/// that is set and stays silent is missing data, not a check that is off.
#[test]
fn canary_thresholds_expect_the_data_the_config_sets_up() {
    let expects = |sections: &str| {
        let cfg = parse(&format!(
            "{sections}\n[environments.production]\nhosts = [\"web-1\", \"web-2\"]\nstrategy = {{ kind = \"canary\", steps = [\"1\", \"100%\"], max_relative = 2 }}\n"
        ))
        .unwrap();
        match &cfg.environments[0].strategy {
            Strategy::Canary { thresholds, .. } => thresholds.expects,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(expects(""), canary::Expects::default());
    assert_eq!(
        expects("[metrics]\nprometheus = \"http://127.0.0.1:9100/metrics\"\n"),
        canary::Expects {
            requests: true,
            ..Default::default()
        }
    );
    assert_eq!(
        expects(
            "[metrics]\nprometheus = \"http://127.0.0.1:9100/metrics\"\nlatency = 'q{quantile=\"0.99\"}'\n"
        ),
        canary::Expects {
            requests: true,
            app_latency: true,
            ..Default::default()
        }
    );
    assert_eq!(
        expects("[logs]\ncommand = \"journalctl -fu hello\"\nerror_pattern = \"ERROR\"\n"),
        canary::Expects {
            error_lines: true,
            ..Default::default()
        }
    );
    // Logs without a pattern have no error lines to promise.
    assert_eq!(
        expects("[logs]\nfiles = [\"app.log\"]\n"),
        canary::Expects::default()
    );
}

#[test]
fn bad_counter_selectors_stop_the_load() {
    let err = parse("[metrics]\nprometheus = \"http://127.0.0.1:9100/metrics\"\nerrors = 'http_requests_total{code=~\"5..\"'\n[environments.production]\nhosts = [\"web-1\"]\n").unwrap_err();
    assert!(
        err.starts_with("/x/shipdeck.toml:8:10: metrics.errors: metric selector")
            && err.contains("missing closing }"),
        "{err}"
    );
}

#[test]
fn canary_health_threshold_follows_the_health_section() {
    let strategy = r#"
[environments.production]
hosts = ["web-1", "web-2"]
strategy = { kind = "canary", steps = ["1", "100%"] }
"#;
    let thresholds = |cfg: Config| match &cfg.environments[0].strategy {
        Strategy::Canary { thresholds, .. } => thresholds.clone(),
        other => panic!("{other:?}"),
    };
    let without = thresholds(parse(strategy).unwrap());
    assert_eq!(without.min_health_pass_rate, None);
    assert_eq!(without.min_requests, canary::DEFAULT_MIN_REQUESTS);
    let with = thresholds(parse(&format!("[health]\ncommand = \"./check\"\n{strategy}")).unwrap());
    assert_eq!(with, Thresholds::default());
}

#[test]
fn canary_thresholds_are_validated_at_the_strategy() {
    let err = parse(
        r#"
[health]
command = "./check"
[environments.production]
hosts = ["web-1", "web-2"]
strategy = { kind = "canary", steps = ["1", "100%"], max_latency_ms = 0 }
"#,
    )
    .unwrap_err();
    assert!(
        err.starts_with("/x/shipdeck.toml:11:12: max_latency_ms = 0 would fail every canary"),
        "{err}"
    );
}

#[test]
fn blue_green_ports_come_from_the_strategy_or_the_host_vars() {
    let cfg = progressive();
    let staging = cfg.environment("staging").unwrap();
    let Strategy::BlueGreen(bg) = &staging.strategy else {
        panic!("{:?}", staging.strategy)
    };
    assert_eq!(
        *bg,
        BlueGreen {
            switch: "./bin/switch".into(),
            stop: Some("./bin/stop".into()),
            finish_after: Some(Duration::from_secs(600)),
            ports: Some([8081, 8082]),
        }
    );
    let ports: Vec<(String, u16, u16)> = staging
        .hosts
        .iter()
        .map(|h| {
            let port = |slot| slot_port(bg, h, slot).unwrap().unwrap();
            (h.name.clone(), port(Slot::Blue), port(Slot::Green))
        })
        .collect();
    assert_eq!(
        ports,
        [
            ("stage-1".into(), 8081, 8082),
            ("stage-2".into(), 9001, 9002),
            // Only green overridden: blue stays the strategy's.
            ("stage-3".into(), 8081, 9003),
        ]
    );
}

#[test]
fn blue_green_ports_may_all_come_from_vars() {
    let cfg = parse(
        r#"
[environments.production]
hosts = [{ address = "local:a", vars = { blue_port = "8101", green_port = "8102" } },
         { address = "local:b", vars = { blue_port = "8201", green_port = "8202" } }]
strategy = { kind = "blue-green", switch = "./bin/switch" }
"#,
    )
    .unwrap();
    let env = &cfg.environments[0];
    let Strategy::BlueGreen(bg) = &env.strategy else {
        panic!("{:?}", env.strategy)
    };
    assert_eq!(
        (bg.ports, bg.stop.as_ref(), bg.finish_after),
        (None, None, None)
    );
    assert_eq!(slot_port(bg, &env.hosts[1], Slot::Green), Ok(Some(8202)));
}

#[test]
fn a_table_host_without_a_slot_port_is_told_which_var_to_add() {
    let err = parse(
        r#"
[environments.production]
hosts = [{ address = "web-1", vars = { blue_port = "8101" } }]
strategy = { kind = "blue-green", switch = "./bin/switch" }
"#,
    )
    .unwrap_err();
    assert!(
        err.starts_with("/x/shipdeck.toml:8:10: host \"web-1\" has no port for the green slot"),
        "{err}"
    );
    assert!(err.contains("add green_port to its vars"), "{err}");
}

#[test]
fn windows_resolve_with_their_zone() {
    let cfg = progressive();
    let prod = &cfg.environment("production").unwrap().rules;
    assert_eq!(prod.zone_name(), "Europe/Berlin");
    assert_eq!(
        prod.to_string(),
        "deploys Mon-Fri 09:00-16:00 Europe/Berlin, 2 freezes"
    );
    assert_eq!(prod.freezes()[0].name.as_deref(), Some("holidays"));
    // Freezes without a window, in the default zone.
    let reports = &cfg.environment("reports").unwrap().rules;
    assert_eq!(reports.zone_name(), DEFAULT_TIMEZONE);
    assert_eq!(reports.to_string(), "deploys at any time, 1 freeze");
    // Nothing written: no rule.
    assert!(cfg.environment("staging").unwrap().rules.is_unrestricted());
}

#[test]
fn a_time_zone_alone_is_fine() {
    let cfg = parse(
        r#"
[environments.production]
hosts = ["web-1"]
timezone = "America/New_York"
"#,
    )
    .unwrap();
    let rules = &cfg.environments[0].rules;
    assert_eq!(rules.zone_name(), "America/New_York");
    assert!(rules.is_unrestricted());
}

#[test]
fn hooks_and_latency_resolve() {
    let cfg = progressive();
    assert_eq!(cfg.hooks.run_once, ["./bin/migrate"]);
    assert!(cfg.hooks.run_once_migrates);
    assert_eq!(cfg.hooks.on_rollback, ["./bin/after-rollback"]);
    assert_eq!(
        cfg.hooks.notify,
        ["./bin/post-to-chat", "logger -t shipdeck"]
    );
    assert_eq!(
        cfg.metrics.latency.as_ref().map(|l| l.raw()),
        Some("http_request_duration_seconds{quantile=\"0.99\"}")
    );
}

#[test]
fn the_new_keys_are_off_when_not_written() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config/valid/full.toml");
    let cfg = Config::load(&path).unwrap();
    assert!(cfg.hooks.on_rollback.is_empty());
    assert!(cfg.hooks.notify.is_empty());
    assert!(!cfg.hooks.run_once_migrates);
    assert_eq!(cfg.metrics.latency, None);
    for env in &cfg.environments {
        assert_eq!(env.rules.zone_name(), DEFAULT_TIMEZONE);
        assert!(env.rules.is_unrestricted());
    }
}

/// A strategy key that no kind takes could never be written.
#[test]
fn every_strategy_key_belongs_to_a_kind() {
    let all = r#"
kind = "rolling"
batch = 1
max_failures = 0
steps = ["100%"]
max_error_rate = 0.01
max_latency_ms = 1
max_relative = 2
min_health_pass_rate = 1
max_error_lines_per_min = 1
min_requests = 1
switch = "x"
stop = "x"
finish_after = "1m"
ports = [1, 2]
"#;
    let raw: raw::RawStrategy = toml::from_str(all).unwrap();
    let keys = raw.written_keys();
    assert_eq!(keys.len(), all.trim().lines().count() - 1);
    for key in keys {
        assert!(
            STRATEGY_KEYS.iter().any(|(_, takes)| takes.contains(&key)),
            "{key}"
        );
    }
}
