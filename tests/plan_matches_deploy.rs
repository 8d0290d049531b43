//! `shipdeck plan ENV REL` and the deploy that follows say the same: for
//! every strategy, each host's steps in the plan (prepare, then publish) are
//! the steps the deploy's events report for that host, in that order.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use shipdeck::config::Config;
use shipdeck::engine::{Engine, Event, EventSink, Step, StepStatus};
use shipdeck::model::ReleaseId;

const HOSTS: [&str; 3] = ["web-1", "web-2", "web-3"];

/// Steps of the change itself, as the plan lists them (connecting, locking,
/// cleanup and unlocking frame every change and are not planned per host).
fn planned_kind(step: Step) -> bool {
    !matches!(
        step,
        Step::Connect | Step::Lock | Step::Unlock | Step::Cleanup
    )
}

fn project(strategy: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::create_dir_all(root.join("dist/bin")).unwrap();
    for (name, body) in [
        (
            "restart",
            "#!/bin/sh\necho \"$SHIPDECK_RELEASE $SHIPDECK_SLOT\" >> \"$SHIPDECK_DEPLOY_TO/restarts\"\n",
        ),
        (
            "switch",
            "#!/bin/sh\necho \"$SHIPDECK_SLOT\" > \"$SHIPDECK_DEPLOY_TO/traffic\"\n",
        ),
        ("stop", "#!/bin/sh\nexit 0\n"),
        ("prepare", "#!/bin/sh\nexit 0\n"),
        ("migrate", "#!/bin/sh\nexit 0\n"),
        ("after", "#!/bin/sh\nexit 0\n"),
    ] {
        let path = root.join("dist/bin").join(name);
        fs::write(&path, body).unwrap();
        Command::new("chmod").arg("+x").arg(&path).status().unwrap();
    }
    let hosts: Vec<String> = HOSTS
        .iter()
        .map(|h| format!("\"local:hosts/{h}\""))
        .collect();
    fs::write(
        root.join("shipdeck.toml"),
        format!(
            r#"[app]
name = "hello"
artifact = "dist"
deploy_to = "/unused"
shared = ["log"]

[hooks]
before_switch = ["./bin/prepare"]
run_once = ["./bin/migrate"]
restart = "./bin/restart"
after_switch = ["./bin/after"]

[health]
command = "true"
interval = "50ms"
healthy_after = 1
gate = "5s"

[environments.production]
hosts = [{hosts}]
strategy = {strategy}
"#,
            hosts = hosts.join(", ")
        ),
    )
    .unwrap();
    dir
}

fn shipdeck(root: &Path, args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_shipdeck"))
        .current_dir(root)
        .env("SHIPDECK_OPERATOR", "alice")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "shipdeck {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Each host's planned steps, and the steps the deploy reported done.
fn planned_and_done(strategy: &str) -> (Vec<Vec<Step>>, Vec<Vec<Step>>) {
    let dir = project(strategy);
    let root = dir.path();
    fs::write(root.join("dist/version"), "v1\n").unwrap();
    shipdeck(root, &["build", "--id", "v1"]);
    shipdeck(root, &["deploy", "production", "v1"]);
    fs::write(root.join("dist/version"), "v2\n").unwrap();
    shipdeck(root, &["build", "--id", "v2"]);

    let config = Arc::new(Config::load(&root.join("shipdeck.toml")).unwrap());
    let seen: Arc<Mutex<BTreeMap<usize, Vec<Step>>>> = Arc::default();
    let sink = {
        let seen = Arc::clone(&seen);
        EventSink::from_fn(move |e| {
            if let Event::HostStep {
                host,
                step,
                status: StepStatus::Done { .. },
            } = e
                && planned_kind(step)
            {
                seen.lock().unwrap().entry(host).or_default().push(step);
            }
        })
    };
    let engine = Engine::new(config, false, sink);
    let v2 = ReleaseId::parse("v2").unwrap();
    let (plan, refusal) = engine.plan("production", &v2).unwrap();
    assert!(refusal.is_none(), "{refusal:?}");
    let report = engine.deploy("production", &v2).unwrap();
    assert!(format!("{report:?}").contains("v2"));
    let planned = plan
        .hosts
        .iter()
        .map(|h| h.prepare.iter().chain(&h.publish).copied().collect())
        .collect();
    let seen = seen.lock().unwrap();
    let done = (0..HOSTS.len())
        .map(|i| seen.get(&i).cloned().unwrap_or_default())
        .collect();
    for h in HOSTS {
        assert_eq!(
            fs::read_link(root.join("hosts").join(h).join("current"))
                .unwrap()
                .to_string_lossy(),
            "releases/v2",
            "{h} runs the deployed release"
        );
    }
    (planned, done)
}

fn assert_same(strategy: &str) {
    let (planned, done) = planned_and_done(strategy);
    assert_eq!(
        planned, done,
        "{strategy}: the plan and the deploy's steps differ"
    );
    assert!(
        planned[0].contains(&Step::Switch) || planned[0].contains(&Step::StartSlot),
        "{planned:?}"
    );
}

#[test]
fn all_at_once_does_what_it_planned() {
    assert_same(r#"{ kind = "all-at-once" }"#);
}

#[test]
fn rolling_does_what_it_planned() {
    assert_same(r#"{ kind = "rolling", batch = 1, max_failures = 0 }"#);
}

#[test]
fn canary_does_what_it_planned() {
    assert_same(r#"{ kind = "canary", steps = ["1", "pause 1s", "100%"] }"#);
}

#[test]
fn blue_green_does_what_it_planned() {
    assert_same(
        r#"{ kind = "blue-green", switch = "./bin/switch", stop = "./bin/stop", ports = [18081, 18082] }"#,
    );
}
