//! The whole lifecycle through the `local` transport: each "host" is a
//! directory, so these run anywhere, and assert what an operator would check.

mod support;

use std::fs;
use std::process::Command;

use support::local::{PROD, Sandbox, all_on};

#[test]
fn build_deploy_promote_rollback() {
    let sb = Sandbox::new("");
    sb.build("v1", "v1", false);
    assert!(
        sb.root().join("build-ran").exists(),
        "app.build did not run"
    );
    sb.build("v2", "v2", false);

    let r = sb.ok(&["deploy", "staging", "v1"]);
    assert!(r.stdout.contains("1 host switched"), "{}", r.stdout);
    assert!(r.stderr.contains("health gate   ok"), "{}", r.stderr);
    assert_eq!(sb.current("stage-1").as_deref(), Some("releases/v1"));
    sb.ok(&["promote", "v1", "--to", "production"]);
    all_on(&sb, "v1");

    // v2 has not been to staging: promotion and direct deploys are refused.
    let r = sb.run(&["promote", "v2", "--to", "production"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(
        r.stderr.contains("v2 (sha256 ")
            && r.stderr
                .contains("has not passed staging on local:hosts/stage-1"),
        "{}",
        r.stderr
    );
    assert_eq!(sb.run(&["deploy", "production", "v2"]).code, 4);
    all_on(&sb, "v1");

    sb.ok(&["deploy", "staging", "v2"]);
    let r = sb.ok(&["promote", "v2", "--to", "production"]);
    assert!(r.stdout.contains("3 hosts switched"), "{}", r.stdout);
    all_on(&sb, "v2");
    for h in PROD {
        let last = sb.history(h).pop().unwrap();
        assert_eq!(last["action"], "promote");
        assert_eq!(last["release"], "v2");
        assert_eq!(last["from"], "v1");
        assert_eq!(last["outcome"], "success");
        assert_eq!(last["health"], "passed");
        assert_eq!(last["who"], "alice");
        assert_eq!(
            fs::read_to_string(sb.host(h).join("current/version")).unwrap(),
            "v2"
        );
        // shared paths are links into shared/
        assert_eq!(
            fs::read_link(sb.host(h).join("releases/v2/log")).unwrap(),
            sb.host(h).join("shared/log")
        );
    }

    let status = sb.status_hosts("production");
    assert_eq!(status.len(), 3);
    for s in &status {
        assert_eq!(s["current"], "v2");
        assert_eq!(s["previous"], "v1");
        assert_eq!(s["rollback_ready"], true);
        assert_eq!(s["health"], "healthy");
    }

    let r = sb.ok(&["rollback", "production"]);
    assert!(
        r.stdout.contains("rolled production back from v2 to v1"),
        "{}",
        r.stdout
    );
    all_on(&sb, "v1");
    for h in PROD {
        let last = sb.history(h).pop().unwrap();
        assert_eq!(
            (
                last["action"].as_str(),
                last["release"].as_str(),
                last["from"].as_str()
            ),
            (Some("rollback"), Some("v1"), Some("v2"))
        );
        let restarts = fs::read_to_string(sb.host(h).join("restarts")).unwrap();
        assert_eq!(restarts.lines().collect::<Vec<_>>(), ["v1", "v2", "v1"]);
    }
    // Rolling back again goes further back: there is nothing before v1.
    let r = sb.run(&["rollback", "production"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("nothing to roll back to"), "{}", r.stderr);
    all_on(&sb, "v1");

    sb.ok(&["rollback", "production", "--to", "v2"]);
    all_on(&sb, "v2");

    let r = sb.ok(&["history", "production"]);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(lines[0].starts_with("TIME"), "{}", r.stdout);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("rollback") && l.contains("success 3/3")),
        "{}",
        r.stdout
    );

    let r = sb.ok(&["releases", "--json"]);
    let releases: Vec<serde_json::Value> = serde_json::from_value(
        serde_json::from_str::<serde_json::Value>(&r.stdout).unwrap()["releases"].clone(),
    )
    .unwrap();
    let v2 = releases.iter().find(|r| r["id"] == "v2").unwrap();
    assert_eq!(v2["runs_on"]["production"].as_array().unwrap().len(), 3);
    assert_eq!(v2["passed"], serde_json::json!(["staging", "production"]));
}

#[test]
fn a_release_id_with_shell_syntax_is_refused_before_anything_runs() {
    let sb = Sandbox::new("");
    for bad in ["v1;touch pwned", "$(touch pwned)", "../v1", "-rf"] {
        let r = sb.run(&["build", &format!("--id={bad}")]);
        assert_eq!(r.code, 2, "{bad}: {}", r.stderr);
        assert!(r.stderr.contains("invalid release id"), "{}", r.stderr);
        let r = sb.run(&["deploy", "staging", "--", bad]);
        assert_eq!(r.code, 2, "{bad}: {}", r.stderr);
    }
    assert!(!sb.root().join("build-ran").exists(), "the build ran");
    assert!(!sb.root().join("pwned").exists());
    assert!(!sb.host("stage-1").exists(), "a host was touched");
}

#[test]
fn a_restart_failing_on_one_host_puts_every_host_back() {
    let sb = Sandbox::new("");
    sb.build("v1", "v1", false);
    sb.build("v2", "v2", true);
    sb.ok(&["deploy", "staging", "v1"]);
    sb.ok(&["promote", "v1", "--to", "production"]);
    fs::write(sb.host("stage-1").join("dummy"), "").unwrap();
    sb.ok(&["deploy", "staging", "v2"]);
    fs::write(sb.host("web-2").join("fail-restart"), "").unwrap();

    let r = sb.run(&["promote", "v2", "--to", "production"]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("restart       FAILED") && r.stderr.contains("cannot bind :8080"),
        "{}",
        r.stderr
    );
    assert!(
        r.stdout.contains("every host runs what it ran before"),
        "{}",
        r.stdout
    );
    all_on(&sb, "v1");
    for h in PROD {
        assert!(
            !sb.host(h).join(".shipdeck/lock").exists(),
            "{h} still locked"
        );
        let hist = sb.history(h);
        assert!(
            hist.iter().any(|r| r["action"] == "promote"
                && r["release"] == "v2"
                && r["outcome"] == "failed"),
            "{h}: {hist:?}"
        );
        // The old release is running again, restarted by the revert.
        assert_eq!(
            fs::read_to_string(sb.host(h).join("restarts"))
                .unwrap()
                .lines()
                .last(),
            Some("v1")
        );
    }
    // The failed release did not pass production, and rollback still knows v1 is current.
    let status = sb.status_hosts("production");
    assert!(status.iter().all(|s| s["current"] == "v1"));
}

#[test]
fn a_failed_health_gate_on_a_first_deploy_leaves_no_current() {
    let sb = Sandbox::new("");
    fs::write(sb.root().join("dist/unhealthy"), "").unwrap();
    sb.build("v1", "v1", false);
    let r = sb.run(&["deploy", "staging", "v1"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("not healthy within 1s"), "{}", r.stderr);
    assert_eq!(
        sb.current("stage-1"),
        None,
        "a host that ran nothing must go back to nothing"
    );
    let hist = sb.history("stage-1");
    assert_eq!(hist.last().unwrap()["action"], "revert");
}

#[test]
fn rolling_stops_after_max_failures_and_reverts_finished_batches() {
    let sb = Sandbox::new("strategy = { kind = \"rolling\", batch = 1, max_failures = 0 }");
    sb.build("v1", "v1", false);
    sb.build("v2", "v2", true);
    sb.ok(&["deploy", "staging", "v1"]);
    sb.ok(&["promote", "v1", "--to", "production"]);
    sb.ok(&["deploy", "staging", "v2"]);
    fs::write(sb.host("web-2").join("fail-restart"), "").unwrap();
    let r = sb.run(&["promote", "v2", "--to", "production"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("batch 2/3"), "{}", r.stderr);
    assert!(
        !r.stderr.contains("batch 3/3"),
        "went on after the failure: {}",
        r.stderr
    );
    all_on(&sb, "v1");
    // web-3 was never switched: its history says so.
    let web3 = sb.history("web-3");
    assert!(
        web3.last().unwrap()["message"]
            .as_str()
            .unwrap()
            .starts_with("not switched"),
        "{web3:?}"
    );
}

#[test]
fn a_lock_held_by_another_operator_is_refused_with_exit_3() {
    let sb = Sandbox::new("");
    sb.build("v1", "v1", false);
    let r = sb.run_as(
        "bob",
        &["lock", "staging", "--reason", "investigating 502s"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = sb.run(&["deploy", "staging", "v1"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("locked by bob@") && r.stderr.contains("investigating 502s"),
        "{}",
        r.stderr
    );
    assert_eq!(sb.current("stage-1"), None);
    // A hold names no process (the `lock` that took it has exited), and the
    // refused change never says its lock step went well.
    assert!(
        !r.stderr.contains("(pid") && r.stderr.contains("(shipdeck lock)"),
        "{}",
        r.stderr
    );
    assert!(
        !r.stderr.contains("lock          ok") && r.stderr.contains("lock          FAILED"),
        "{}",
        r.stderr
    );
    // Locking again keeps the first hold, and says so.
    let again = sb.run_as("bob", &["lock", "staging", "--reason", "another reason"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        again.stdout.contains("was already locked by bob@")
            && again.stdout.contains("investigating 502s")
            && again.stdout.contains("that hold and its reason stay"),
        "{}",
        again.stdout
    );
    assert_eq!(sb.run(&["rollback", "staging"]).code, 3);
    let r = sb.run(&["unlock", "staging"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    let r = sb.run(&["unlock", "staging", "--force"]);
    assert_eq!(r.code, 2, "breaking a lock needs a reason: {}", r.stderr);
    assert!(r.stderr.contains("--reason"), "{}", r.stderr);
    let r = sb.run(&[
        "unlock",
        "staging",
        "--force",
        "--reason",
        "bob is off shift",
    ]);
    assert_eq!(r.code, 2, "no terminal to confirm on: {}", r.stderr);
    sb.ok(&[
        "unlock",
        "staging",
        "--force",
        "--yes",
        "--reason",
        "bob is off shift",
    ]);
    let last = sb.history("stage-1").pop().unwrap();
    assert_eq!(last["action"], "unlock");
    assert_eq!(last["who"], "alice");
    assert!(
        last["message"]
            .as_str()
            .unwrap()
            .contains("broke the lock of bob@"),
        "{last}"
    );
    sb.ok(&["deploy", "staging", "v1"]);
}

#[test]
fn readonly_refuses_every_command_that_changes_something_with_exit_2() {
    let sb = Sandbox::new("");
    sb.build("v1", "v1", false);
    sb.build("v2", "v2", false);
    sb.ok(&["deploy", "staging", "v1"]);
    let history = sb.history("stage-1").len();

    // Before or after the subcommand: the flag is global.
    for args in [
        &["--readonly", "deploy", "staging", "v2"][..],
        &["deploy", "staging", "v2", "--readonly"],
    ] {
        let r = sb.run(args);
        assert_eq!(r.code, 2, "{args:?}: {}{}", r.stdout, r.stderr);
        assert!(
            r.stderr.contains(
                "refused under --readonly: deploy switches hosts to a release; nothing was changed"
            ),
            "{}",
            r.stderr
        );
        assert!(!r.stderr.contains("upload"), "it started: {}", r.stderr);
    }
    let refused: [&[&str]; 10] = [
        &["promote", "v1", "--to", "production"],
        &["rollback", "staging"],
        &["resume", "staging"],
        &["continue", "staging"],
        &["abort", "staging"],
        &["finish", "staging"],
        &["lock", "staging", "--reason", "look only"],
        &["unlock", "staging"],
        &["unlock", "staging", "--force", "--yes", "--reason", "x"],
        &["build", "--id", "v3"],
    ];
    for args in refused {
        let r = sb.run(&[&["--readonly"][..], args].concat());
        assert_eq!(r.code, 2, "{args:?}: {}{}", r.stdout, r.stderr);
        assert!(
            r.stderr.contains("refused under --readonly: ")
                && r.stderr.contains(&format!("{} ", args[0]))
                && r.stderr.contains("nothing was changed"),
            "{args:?}: {}",
            r.stderr
        );
    }
    assert_eq!(sb.current("stage-1").as_deref(), Some("releases/v1"));
    assert_eq!(sb.history("stage-1").len(), history, "the history grew");
    assert!(!sb.host("stage-1").join(".shipdeck/lock").exists());
    for h in PROD {
        assert_eq!(sb.current(h), None, "{h}");
    }
    let r = sb.ok(&["releases", "--json"]);
    let releases: Vec<serde_json::Value> = serde_json::from_value(
        serde_json::from_str::<serde_json::Value>(&r.stdout).unwrap()["releases"].clone(),
    )
    .unwrap();
    assert_eq!(releases.len(), 2, "build ran: {}", r.stdout);

    // Commands that only read work as before.
    for args in [
        &["status", "staging"][..],
        &["history", "staging"],
        &["plan", "staging", "v2"],
        &["releases"],
        &["check", "staging"],
    ] {
        sb.ok(&[&["--readonly"][..], args].concat());
    }
    // And without the flag, the deploy it refused goes through.
    sb.ok(&["deploy", "staging", "v2"]);
    assert_eq!(sb.current("stage-1").as_deref(), Some("releases/v2"));
}

#[test]
fn plan_changes_nothing_and_check_reports_hosts() {
    let sb = Sandbox::new("");
    sb.build("v1", "v1", false);
    let r = sb.ok(&["plan", "staging", "v1"]);
    assert!(r.stdout.contains("batch 1/1"), "{}", r.stdout);
    assert!(r.stdout.contains("upload"), "{}", r.stdout);
    assert!(!sb.host("stage-1").exists(), "plan touched a host");
    let r = sb.run(&["plan", "production", "v1"]);
    assert_eq!(r.code, 4, "{}", r.stdout);
    assert!(r.stdout.contains("REFUSED"), "{}", r.stdout);
    let r = sb.ok(&["check", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(report["hosts"].as_array().unwrap().len(), 4);
    assert!(
        report["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["problems"].as_array().unwrap().is_empty())
    );
}

/// `check` finds, before any change, a hook whose program is not on the
/// hosts (the README's own `sudo systemctl …` on a host without sudo) or not
/// in the artifact, naming the hook; the programs that are there pass.
#[test]
fn check_names_hook_programs_missing_on_the_hosts_or_in_the_artifact() {
    let sb = Sandbox::new("");
    sb.edit_config(
        "restart = \"./bin/restart\"",
        "restart = \"./bin/restart\"\nbefore_switch = [\"./bin/missing --now\", \"sh -c true\"]\nafter_switch = [\"no-such-sudo systemctl restart hello\", \"if true; then :; fi\"]",
    );
    let r = sb.run(&["check", "staging"]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains(
            "`no-such-sudo` is not on this host (command -v): after_switch: `no-such-sudo systemctl restart hello`"
        ),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(
            "`bin/missing` is not in the artifact folder dist: before_switch: `./bin/missing --now`"
        ),
        "{}",
        r.stdout
    );
    // What is there is not named: `sh`, ./bin/restart, ./bin/healthy.
    for fine in ["`sh`", "bin/restart", "bin/healthy"] {
        assert!(!r.stdout.contains(fine), "{fine}: {}", r.stdout);
    }
}

#[test]
fn cleanup_keeps_keep_releases_and_never_current_or_previous() {
    let sb = Sandbox::new("");
    for i in 1..=5 {
        let id = format!("v{i}");
        sb.build(&id, &id, false);
        sb.ok(&["deploy", "staging", &id]);
    }
    let mut on_disk: Vec<String> = fs::read_dir(sb.host("stage-1").join("releases"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    assert_eq!(on_disk, ["v3", "v4", "v5"]);
    // Redeploying a release that is already there uploads nothing.
    sb.ok(&["rollback", "staging"]);
    let r = sb.ok(&["deploy", "staging", "v5"]);
    assert!(r.stderr.contains("upload        skipped"), "{}", r.stderr);
}

#[test]
fn config_errors_name_file_line_and_column_with_exit_2() {
    let sb = Sandbox::new("strategy = { kind = \"canary-ish\" }");
    let r = sb.run(&["status"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("shipdeck.toml:24:21: unknown strategy kind \"canary-ish\""),
        "{}",
        r.stderr
    );
}

#[test]
fn hooks_run_where_and_when_they_should() {
    let sb = Sandbox::new("");
    let config = fs::read_to_string(sb.root().join("shipdeck.toml")).unwrap().replace(
        "restart = \"./bin/restart\"",
        "restart = \"./bin/restart\"\n\
         before_switch = [\"touch prepared\"]\n\
         run_once = [\"echo \\\"$SHIPDECK_HOST\\\" >> \\\"$SHIPDECK_DEPLOY_TO/../migrations\\\"\"]\n\
         after_switch = [\"readlink \\\"$SHIPDECK_DEPLOY_TO/current\\\" > \\\"$SHIPDECK_DEPLOY_TO/after\\\"\"]",
    );
    fs::write(sb.root().join("shipdeck.toml"), config).unwrap();
    sb.build("v1", "v1", false);
    sb.ok(&["deploy", "staging", "v1"]);
    sb.ok(&["promote", "v1", "--to", "production"]);
    // run_once: once per change, on its first host only.
    let migrations = fs::read_to_string(sb.root().join("hosts/migrations")).unwrap();
    assert_eq!(
        migrations.lines().collect::<Vec<_>>(),
        ["local:hosts/stage-1", "local:hosts/web-1"]
    );
    for h in PROD {
        // before_switch ran in the new release, after_switch saw the switch done.
        assert!(sb.host(h).join("releases/v1/prepared").exists(), "{h}");
        assert_eq!(
            fs::read_to_string(sb.host(h).join("after")).unwrap().trim(),
            "releases/v1"
        );
    }
    // A failing before_switch stops the change before any host switches.
    let config = fs::read_to_string(sb.root().join("shipdeck.toml"))
        .unwrap()
        .replace("touch prepared", "test -f never-there");
    fs::write(sb.root().join("shipdeck.toml"), config).unwrap();
    sb.build("v2", "v2", false);
    let r = sb.run(&["deploy", "staging", "v2"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("before_switch hook `test -f never-there` failed"),
        "{}",
        r.stderr
    );
    assert_eq!(sb.current("stage-1").as_deref(), Some("releases/v1"));
}

#[test]
fn a_torn_history_line_is_reported_and_never_glued_onto() {
    let sb = Sandbox::new("");
    for v in ["v1", "v2", "v3"] {
        sb.build(v, v, false);
    }
    for v in ["v1", "v2"] {
        sb.ok(&["deploy", "staging", v]);
        sb.ok(&["promote", v, "--to", "production"]);
    }
    // A full disk cut web-1's last append: no newline at the end.
    let file = sb.host("web-1").join(".shipdeck/history.jsonl");
    let torn = r#"{"time":"2026-01-01T00:00:00Z","who":"bob","chan"#;
    let mut text = fs::read_to_string(&file).unwrap();
    assert_eq!(text.lines().count(), 2);
    text.push_str(torn);
    fs::write(&file, &text).unwrap();
    let says = "web-1: history line 3 (.shipdeck/history.jsonl) is corrupt and was not read";

    let r = sb.ok(&["status", "production"]);
    assert!(r.stdout.contains(says), "{}", r.stdout);
    let status = sb.status_hosts("production");
    assert_eq!(status[0]["previous"], "v1", "{status:?}");
    assert!(
        status[0]["history_warnings"][0]
            .as_str()
            .unwrap()
            .contains(says)
    );
    // The JSON schema says every field: no warnings is an empty list.
    assert_eq!(
        status[1]["history_warnings"],
        serde_json::json!([]),
        "{}",
        r.stdout
    );

    // `history` shows every readable record and says which line it could not read.
    let r = sb.run(&["history", "production"]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains(says), "{}", r.stderr);
    assert!(
        r.stdout
            .lines()
            .any(|l| l.contains("promote") && l.contains("v2")),
        "{}",
        r.stdout
    );

    // A change reads history for decisions: it says so, and the next record
    // starts on its own line.
    let r = sb.ok(&["deploy", "staging", "v3"]);
    assert!(!r.stderr.contains("corrupt"), "{}", r.stderr);
    let r = sb.ok(&["promote", "v3", "--to", "production"]);
    assert!(
        r.stderr.contains(says) && r.stderr.contains("this promote reads only the other lines"),
        "{}",
        r.stderr
    );
    all_on(&sb, "v3");
    let text = fs::read_to_string(&file).unwrap();
    assert!(text.ends_with('\n'));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert_eq!(lines[2], torn, "the torn line is kept as it was");
    let records: Vec<serde_json::Value> = [lines[0], lines[1], lines[3]]
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        records
            .iter()
            .map(|r| r["release"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["v1", "v2", "v3"]
    );
    assert_eq!(records[2]["from"], "v2");

    // The rollback target is still decided right, and the warning names the line.
    let r = sb.ok(&["rollback", "production"]);
    assert!(r.stderr.contains(says), "{}", r.stderr);
    assert!(r.stdout.contains("from v3 to v2"), "{}", r.stdout);
    all_on(&sb, "v2");
    let text = fs::read_to_string(&file).unwrap();
    assert_eq!(text.lines().count(), 5);
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(
        (last["action"].as_str(), last["release"].as_str()),
        (Some("rollback"), Some("v2"))
    );
}

/// SIGTERM (a CI runner's cancel) and SIGHUP (a closed terminal) stop a change
/// as Ctrl-C does: after the current step, switched hosts put back, exit 1.
#[test]
fn sigterm_and_sighup_put_switched_hosts_back_and_exit_1() {
    use std::time::{Duration, Instant};
    let sb = Sandbox::new("");
    sb.build("v1", "v1", false);
    // v2's restart is slow on hosts that carry `slow-restart`, and says when it starts.
    fs::write(
        sb.root().join("dist/bin/restart"),
        "#!/bin/sh\nif [ -f \"$SHIPDECK_DEPLOY_TO/slow-restart\" ]; then touch \"$SHIPDECK_DEPLOY_TO/restarting\"; sleep 2; fi\necho \"$SHIPDECK_RELEASE\" >> \"$SHIPDECK_DEPLOY_TO/restarts\"\n",
    )
    .unwrap();
    sb.build("v2", "v2", false);
    sb.ok(&["deploy", "staging", "v1"]);
    sb.ok(&["promote", "v1", "--to", "production"]);
    sb.ok(&["deploy", "staging", "v2"]);
    for h in PROD {
        fs::write(sb.host(h).join("slow-restart"), "").unwrap();
    }
    let promotes_before = |h: &str| sb.history(h).len();
    for (signal, round) in [("TERM", 1), ("HUP", 2)] {
        let before: Vec<usize> = PROD.iter().map(|h| promotes_before(h)).collect();
        for h in PROD {
            let _ = fs::remove_file(sb.host(h).join("restarting"));
        }
        let child = Command::new(env!("CARGO_BIN_EXE_shipdeck"))
            .args(["promote", "v2", "--to", "production"])
            .current_dir(sb.root())
            .env("SHIPDECK_OPERATOR", "alice")
            .env("XDG_STATE_HOME", sb.root().join("state"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Wait until v2 is live on a host and its restart is running.
        let deadline = Instant::now() + Duration::from_secs(20);
        while !PROD.iter().any(|h| sb.host(h).join("restarting").exists()) {
            assert!(
                Instant::now() < deadline,
                "round {round}: the restart never started"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let switched: Vec<&str> = PROD
            .iter()
            .copied()
            .filter(|h| sb.current(h).as_deref() == Some("releases/v2"))
            .collect();
        assert!(
            !switched.is_empty(),
            "round {round}: no host was switched yet"
        );
        let sent = Command::new("kill")
            .args([format!("-{signal}"), child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "round {round} (SIG{signal}): {stderr}"
        );
        assert!(
            stderr.contains(&format!("SIG{signal}: cancelling")),
            "round {round}: {stderr}"
        );
        all_on(&sb, "v1");
        for (i, h) in PROD.iter().enumerate() {
            assert!(
                !sb.host(h).join(".shipdeck/lock").exists(),
                "round {round}: {h} is still locked"
            );
            assert!(
                !sb.host(h).join(".shipdeck/change.json").exists(),
                "round {round}: {h} still has a journal"
            );
            let history = sb.history(h);
            assert!(
                history.len() > before[i],
                "round {round}: {h} recorded nothing"
            );
            // The host went back, and its history says why.
            let last = history.last().unwrap();
            assert_eq!(
                (
                    last["action"].as_str(),
                    last["release"].as_str(),
                    last["from"].as_str()
                ),
                (Some("revert"), Some("v1"), Some("v2")),
                "round {round}: {h}: {last}"
            );
            assert!(
                last["message"].as_str().unwrap_or("").contains("cancelled"),
                "round {round}: {h}: {last}"
            );
        }
    }
}

#[test]
fn a_tarball_changed_after_build_is_refused_before_any_host_is_reached() {
    let sb = Sandbox::new("");
    sb.build("v1", "v1", false);
    let tarball = sb.root().join(".shipdeck/releases/v1.tar.gz");
    let mut bytes = fs::read(&tarball).unwrap();
    bytes.extend_from_slice(b"tampered");
    fs::write(&tarball, bytes).unwrap();
    let r = sb.run(&["deploy", "staging", "v1"]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains("v1.tar.gz changed after `shipdeck build`")
            && r.stderr.contains("nothing was locked or changed"),
        "{}",
        r.stderr
    );
    assert!(!sb.host("stage-1").exists(), "the host was reached");
}

#[test]
fn the_console_without_a_config_points_to_the_demo_and_init() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_shipdeck"))
        .current_dir(dir.path())
        .env("XDG_STATE_HOME", dir.path().join("state"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("shipdeck.toml")
            && err.contains("`shipdeck demo`")
            && err.contains("`shipdeck init`"),
        "{err}"
    );
}
