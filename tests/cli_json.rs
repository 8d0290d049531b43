//! Golden tests of what scripts read: `--json` of every command and the
//! `--events` stream, against the `local` transport. Times, change ids,
//! durations, sizes, checksums and the sandbox's path are normalised; the
//! rest is compared whole with the snapshots in `tests/snapshots/`
//! (docs/json.md describes the same shapes).

mod support;

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::local::Sandbox;

/// Fields whose numbers differ from run to run.
const VARYING_NUMBERS: &[&str] = &[
    "duration_ms",
    "elapsed_ms",
    "free_bytes",
    "size",
    "artifact_bytes",
    "pid",
];

fn machine() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_default()
        .trim()
        .to_owned()
}

fn normalise_text(s: &str, root: &str) -> String {
    let rules = [
        (r"\d{8}T\d{6}Z-\d+-\d{3}", "<change>"),
        (
            r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)",
            "<time>",
        ),
        (r"pid \d+", "pid <pid>"),
        (r"sha256 [0-9a-f]{12}", "sha256 <sha256>"),
        (r"in \d+(\.\d+)?(ms|µs|s)\b", "in <duration>"),
    ];
    let mut out = s.replace(root, "<root>");
    let m = machine();
    if !m.is_empty() {
        out = out.replace(&format!("@{m}"), "@<machine>");
    }
    for (pattern, with) in rules {
        out = regex::Regex::new(pattern)
            .unwrap()
            .replace_all(&out, with)
            .into_owned();
    }
    out
}

fn normalise(v: &mut Value, root: &str) {
    match v {
        Value::String(s) => *s = normalise_text(s, root),
        Value::Array(items) => items.iter_mut().for_each(|i| normalise(i, root)),
        Value::Object(map) => {
            for (k, val) in map.iter_mut() {
                if VARYING_NUMBERS.contains(&k.as_str()) && val.is_number() {
                    *val = Value::from(0);
                } else if k == "sha256" && val.is_string() {
                    *val = Value::from("<sha256>");
                } else if k == "machine" && val.is_string() {
                    *val = Value::from("<machine>");
                } else {
                    normalise(val, root);
                }
            }
        }
        _ => {}
    }
}

/// One JSON object on stdout, schema 1, of this kind; normalised.
fn object(sb: &Sandbox, stdout: &str, kind: &str) -> Value {
    let mut v: Value = serde_json::from_str(stdout)
        .unwrap_or_else(|e| panic!("not one JSON object ({e}):\n{stdout}"));
    assert_eq!(v["schema"], 1, "{v}");
    assert_eq!(v["kind"], kind, "{v}");
    normalise(&mut v, &sb.root().display().to_string());
    v
}

/// Run, check the exit code, compare with the snapshot `name`.
fn golden(sb: &Sandbox, name: &str, args: &[&str], code: i32, kind: &str) -> Value {
    let r = sb.run(args);
    assert_eq!(r.code, code, "{args:?}:\n{}\n{}", r.stdout, r.stderr);
    let v = object(sb, &r.stdout, kind);
    insta::assert_snapshot!(name, serde_json::to_string_pretty(&v).unwrap());
    v
}

#[test]
fn every_read_command_prints_one_object_of_schema_1() {
    let sb = Sandbox::new("[logs]\nfiles = [\"shared/log/app.log\"]\n");
    golden(&sb, "build", &["build", "--id", "v1", "--json"], 0, "build");
    golden(&sb, "check", &["check", "--json"], 0, "check");
    golden(&sb, "plan", &["plan", "staging", "v1", "--json"], 0, "plan");
    let refused = golden(
        &sb,
        "plan_refused",
        &["plan", "production", "v1", "--json"],
        4,
        "plan",
    );
    assert!(refused["refused"].is_string());
    sb.ok(&["deploy", "staging", "v1"]);
    let status = golden(&sb, "status", &["status", "--json"], 0, "status");
    assert_eq!(status["env"], Value::Null);
    assert_eq!(status["hosts"].as_array().unwrap().len(), 4);
    golden(
        &sb,
        "status_staging",
        &["status", "staging", "--json"],
        0,
        "status",
    );
    golden(&sb, "releases", &["releases", "--json"], 0, "releases");
    golden(
        &sb,
        "history",
        &["history", "staging", "--json"],
        0,
        "history",
    );
}

#[test]
fn every_change_command_prints_its_report_and_errors_are_objects_too() {
    let sb = Sandbox::new("");
    sb.build("v1", "v1", false);
    sb.build("v2", "v2", false);
    golden(
        &sb,
        "deploy",
        &["deploy", "staging", "v1", "--json"],
        0,
        "change",
    );
    golden(
        &sb,
        "promote",
        &["promote", "v1", "--to", "production", "--json"],
        0,
        "change",
    );
    sb.ok(&["deploy", "staging", "v2"]);
    sb.ok(&["promote", "v2", "--to", "production"]);
    golden(
        &sb,
        "rollback",
        &["rollback", "production", "--json"],
        0,
        "change",
    );
    // Lock and unlock say which they are; a second lock keeps the first hold.
    golden(
        &sb,
        "lock",
        &["lock", "staging", "--reason", "db maintenance", "--json"],
        0,
        "lock",
    );
    golden(
        &sb,
        "lock_kept",
        &["lock", "staging", "--reason", "mine", "--json"],
        0,
        "lock",
    );
    let r = sb.run_as("bob", &["lock", "staging", "--reason", "mine", "--json"]);
    assert_eq!(r.code, 3, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(object(&sb, &r.stdout, "error")["error"]["type"], "locked");
    let r = sb.run_as("bob", &["deploy", "staging", "v1", "--json"]);
    assert_eq!(r.code, 3, "{}\n{}", r.stdout, r.stderr);
    let locked = object(&sb, &r.stdout, "error");
    insta::assert_snapshot!(
        "error_locked",
        serde_json::to_string_pretty(&locked).unwrap()
    );
    golden(&sb, "unlock", &["unlock", "staging", "--json"], 0, "unlock");
    // Commands with nothing to act on fail as JSON, with their exit codes.
    golden(
        &sb,
        "error_continue",
        &["continue", "staging", "--json"],
        1,
        "error",
    );
    golden(
        &sb,
        "error_abort",
        &["abort", "staging", "--events"],
        1,
        "error",
    );
    golden(
        &sb,
        "error_resume",
        &["resume", "staging", "--json"],
        1,
        "error",
    );
    golden(
        &sb,
        "error_finish",
        &["finish", "staging", "--json"],
        2,
        "error",
    );
    golden(
        &sb,
        "error_usage",
        &["deploy", "staging", "--json"],
        2,
        "error",
    );
    golden(
        &sb,
        "error_config",
        &["status", "--config", "missing.toml", "--json"],
        2,
        "error",
    );
    golden(
        &sb,
        "error_readonly",
        &["deploy", "staging", "v1", "--readonly", "--json"],
        2,
        "error",
    );
}

/// A `--events` stream, read as it comes: each line one object.
fn events_of(child: std::process::Child, root: &str) -> (Vec<Value>, i32) {
    let mut child = child;
    let stdout = child.stdout.take().unwrap();
    let mut lines = Vec::new();
    let mut first_while_running = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if first_while_running.is_none() {
            first_while_running = Some(child.try_wait().unwrap().is_none());
        }
        let mut v: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?} is not JSON"));
        assert_eq!(v["schema"], 1, "{v}");
        normalise(&mut v, root);
        lines.push(v);
    }
    assert_eq!(
        first_while_running,
        Some(true),
        "the first event came only once the change was over"
    );
    let code = child.wait().unwrap().code().unwrap_or(-1);
    (lines, code)
}

#[test]
fn deploy_events_stream_one_object_per_step_as_it_happens_and_the_report_last() {
    let sb = Sandbox::new("");
    sb.build("v1", "v1", false);
    // A slow restart: the stream must show the steps before it ends.
    sb.edit_config(
        "restart = \"./bin/restart\"",
        "restart = \"sleep 1 && ./bin/restart\"",
    );
    let root = sb.root().display().to_string();
    let (events, code) = events_of(sb.spawn(&["deploy", "staging", "v1", "--events"]), &root);
    assert_eq!(code, 0, "{events:#?}");
    let (last, steps) = events.split_last().unwrap();
    assert_eq!(last["kind"], "change", "{last}");
    assert_eq!(last["outcome"], "succeeded");
    assert!(steps.iter().all(|e| e["kind"] == "event"), "{steps:#?}");
    let text: Vec<String> = events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect();
    insta::assert_snapshot!("events_deploy", text.join("\n"));

    // Three hosts at once: their steps interleave, each host's in order.
    let started = Instant::now();
    let (events, code) = events_of(
        sb.spawn(&["promote", "v1", "--to", "production", "--events"]),
        &root,
    );
    assert_eq!(code, 0, "{events:#?}");
    assert!(started.elapsed() < Duration::from_secs(60));
    for host in [
        "local:hosts/web-1",
        "local:hosts/web-2",
        "local:hosts/web-3",
    ] {
        let done: Vec<&str> = events
            .iter()
            .filter(|e| e["event"] == "step" && e["host"] == host && e["status"] == "done")
            .map(|e| e["step"].as_str().unwrap())
            .collect();
        assert_eq!(
            done,
            [
                "connect", "lock", "upload", "link", "switch", "restart", "health", "record",
                "cleanup", "unlock"
            ],
            "{host}"
        );
    }
    assert_eq!(events.last().unwrap()["kind"], "change");
    assert_eq!(events[0]["event"], "started");
}

#[test]
fn a_failed_deploy_streams_the_failure_and_exits_1() {
    let sb = Sandbox::new("");
    sb.build("v1", "v1", false);
    sb.ok(&["deploy", "staging", "v1"]);
    sb.build("v2", "v2", true);
    std::fs::write(sb.host("stage-1").join("fail-restart"), "").unwrap();
    let root = sb.root().display().to_string();
    let (events, code) = events_of(sb.spawn(&["deploy", "staging", "v2", "--events"]), &root);
    assert_eq!(code, 1, "{events:#?}");
    let failed = events
        .iter()
        .find(|e| e["status"] == "failed")
        .unwrap_or_else(|| panic!("no failed step: {events:#?}"));
    assert_eq!(failed["step"], "restart");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("cannot bind :8080"),
        "{failed}"
    );
    let last = events.last().unwrap();
    assert_eq!(
        (last["kind"].as_str(), last["outcome"].as_str()),
        (Some("change"), Some("rolled-back"))
    );
    assert_eq!(sb.current("stage-1").as_deref(), Some("releases/v1"));
}

#[test]
fn logs_json_lines_carry_the_schema() {
    let sb = Sandbox::new("[logs]\nfiles = [\"shared/log/app.log\"]\nerror_pattern = \"ERROR\"\n");
    sb.build("v1", "v1", false);
    sb.ok(&["deploy", "staging", "v1"]);
    std::fs::write(
        sb.host("stage-1").join("shared/log/app.log"),
        "hello\nERROR boom\n",
    )
    .unwrap();
    let mut child = sb.spawn(&["logs", "staging", "--json", "-n", "2"]);
    let stdout = child.stdout.take().unwrap();
    let lines: Vec<Value> = BufReader::new(stdout)
        .lines()
        .take(2)
        .map(|l| {
            let mut v = serde_json::from_str(&l.unwrap()).unwrap();
            normalise(&mut v, &sb.root().display().to_string());
            v
        })
        .collect();
    // Logs follow until stopped.
    term(&mut child);
    let text: Vec<String> = lines
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect();
    insta::assert_snapshot!("logs", text.join("\n"));
}

/// SIGTERM by the `kill` program, as an operator's Ctrl-C would stop it.
fn term(child: &mut std::process::Child) {
    let _ = std::process::Command::new("kill")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
}

#[test]
fn init_writes_a_config_check_reads_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_shipdeck"))
            .args(args)
            .current_dir(dir.path())
            .env("XDG_STATE_HOME", dir.path().join("state"))
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    let out = run(&["init", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["kind"].as_str(), v["host"].as_str()),
        (Some("init"), Some("local:hosts/staging-1"))
    );
    let written = std::fs::read_to_string(dir.path().join("shipdeck.toml")).unwrap();
    assert!(written.contains("# [environments.production]"), "{written}");
    // `check` reads it: the config parses and its one host answers.
    std::fs::create_dir_all(dir.path().join("dist")).unwrap();
    let out = run(&["check", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["kind"], "check", "{v}");
    assert_eq!(out.status.code(), Some(0), "{v}");
    // A second init refuses, and leaves the file as it was.
    let out = run(&["init"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("never overwrites"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("shipdeck.toml")).unwrap(),
        written
    );
}

#[test]
fn notify_hooks_get_the_event_as_json_on_stdin_and_as_variables() {
    let sb = Sandbox::new("");
    sb.build("v1", "v1", false);
    sb.edit_config(
        "restart = \"./bin/restart\"",
        "restart = \"./bin/restart\"\nnotify = [\"cat >> notified.jsonl && echo \\\"$SHIPDECK_EVENT $SHIPDECK_RELEASE\\\" >> vars\"]",
    );
    sb.ok(&["deploy", "staging", "v1"]);
    let lines: Vec<Value> = std::fs::read_to_string(sb.root().join("notified.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Each notice runs on its own thread: their order is not promised.
    let mut said: Vec<(&str, &str)> = lines
        .iter()
        .map(|v| {
            (
                v["event"].as_str().unwrap(),
                v["outcome"].as_str().unwrap_or("-"),
            )
        })
        .collect();
    said.sort();
    assert_eq!(
        said,
        [("finished", "succeeded"), ("started", "-")],
        "{lines:#?}"
    );
    for v in &lines {
        assert_eq!(
            (v["schema"].as_u64(), v["kind"].as_str(), v["env"].as_str()),
            (Some(1), Some("notify"), Some("staging"))
        );
        assert_eq!(v["release"], "v1");
        assert!(v["who"].as_str().unwrap().starts_with("alice@"), "{v}");
        assert_eq!(v["action"], "deploy");
    }
    let mut vars: Vec<String> = std::fs::read_to_string(sb.root().join("vars"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    vars.sort();
    assert_eq!(vars, ["finished v1", "started v1"]);
}

#[test]
fn a_canary_pause_streams_paused_then_continue_prints_its_object() {
    let sb =
        Sandbox::new("strategy = { kind = \"canary\", steps = [\"1\", \"pause\", \"100%\"] }\n");
    sb.build("v1", "v1", false);
    sb.ok(&["deploy", "staging", "v1"]);
    let root = sb.root().display().to_string();
    let mut child = sb.spawn(&["promote", "v1", "--to", "production", "--events"]);
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = Vec::new();
    // Read up to the pause: the change then waits for the word.
    for line in lines.by_ref() {
        let mut v: Value = serde_json::from_str(&line.unwrap()).unwrap();
        normalise(&mut v, &root);
        let paused = v["event"] == "paused";
        seen.push(v);
        if paused {
            break;
        }
    }
    let paused = seen.last().unwrap().clone();
    insta::assert_snapshot!(
        "events_paused",
        serde_json::to_string_pretty(&paused).unwrap()
    );
    golden(
        &sb,
        "continue",
        &["continue", "production", "--json"],
        0,
        "continue",
    );
    let rest: Vec<Value> = lines
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect();
    let code = child.wait().unwrap().code();
    assert_eq!(code, Some(0), "{rest:#?}");
    let continued = rest
        .iter()
        .find(|e| e["event"] == "continued")
        .unwrap_or_else(|| panic!("no continued event: {rest:#?}"));
    assert!(continued["by"].as_str().unwrap().starts_with("alice@"));
    assert_eq!(continued["control"], "next");
    let last = rest.last().unwrap();
    assert_eq!(
        (last["kind"].as_str(), last["outcome"].as_str()),
        (Some("change"), Some("succeeded"))
    );
}
