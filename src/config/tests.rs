use std::path::{Path, PathBuf};

use super::*;

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
