//! Recovery after faults (issue 10's numbered cases), each played out
//! deterministically on local hosts: what shipdeck records and what it says
//! afterwards must agree with what each host's `current` points at.

mod support;

use std::fs;

use support::local::{PROD, Sandbox, all_on};

/// v1 everywhere, v2 built (bad: its restart fails where `fail-restart` is).
fn on_v1_with_v2_built() -> Sandbox {
    let sb = Sandbox::new("");
    sb.build("v1", "v1", false);
    sb.build("v2", "v2", true);
    sb.ok(&["deploy", "staging", "v1"]);
    sb.ok(&["promote", "v1", "--to", "production"]);
    sb.ok(&["deploy", "staging", "v2"]);
    sb
}

fn last_record(sb: &Sandbox, host: &str) -> serde_json::Value {
    sb.history(host).pop().expect("a history line")
}

/// Case 1: a change fails, its revert switches web-2 back, the revert's
/// restart fails (COULD NOT PUT BACK). `resume` must switch web-2 again, not
/// skip the switch its journal remembers, and never record a success for a
/// host whose `current` is not the release.
#[test]
fn resume_redoes_a_switch_that_a_failed_revert_took_back() {
    let sb = on_v1_with_v2_built();
    fs::write(sb.host("web-2").join("fail-restart"), "").unwrap();
    fs::write(sb.host("web-2").join("fail-restart-v1"), "").unwrap();
    let r = sb.run(&["promote", "v2", "--to", "production"]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("COULD NOT PUT BACK local:hosts/web-2"),
        "{}",
        r.stdout
    );
    // The revert's switch happened; only its restart failed.
    assert_eq!(sb.current("web-2").as_deref(), Some("releases/v1"));
    assert!(sb.host("web-2").join(".shipdeck/change.json").exists());

    // The fault is gone; the README's recovery is `resume`.
    fs::remove_file(sb.host("web-2").join("fail-restart")).unwrap();
    fs::remove_file(sb.host("web-2").join("fail-restart-v1")).unwrap();
    let r = sb.run(&["resume", "production"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains("hosts/web-2: its journal says it switched to v2, but current points at v1"),
        "{}",
        r.stderr
    );
    all_on(&sb, "v2");
    for h in PROD {
        assert!(!sb.host(h).join(".shipdeck/lock").exists(), "{h} locked");
        assert!(!sb.host(h).join(".shipdeck/change.json").exists(), "{h}");
        let last = last_record(&sb, h);
        assert_eq!(last["release"], "v2", "{h}: {last}");
        assert_eq!(last["outcome"], "success", "{h}: {last}");
    }
    // web-2 really restarted on v2.
    assert_eq!(
        fs::read_to_string(sb.host("web-2").join("restarts"))
            .unwrap()
            .lines()
            .last(),
        Some("v2")
    );
}

/// The health gate checks what `current` runs: a health command that only
/// passes in the release folder it was unpacked into must not pass the gate
/// of a host whose `current` is elsewhere. Here: the command says where it
/// runs.
#[test]
fn the_health_command_runs_in_current() {
    let sb = Sandbox::new("");
    sb.build("v1", "v1", false);
    sb.ok(&["deploy", "staging", "v1"]);
    sb.edit_config(
        r#"command = "./bin/healthy""#,
        r#"command = "pwd > \"$SHIPDECK_DEPLOY_TO/health-ran-in\"; ./bin/healthy""#,
    );
    sb.build("v2", "v2", false);
    sb.ok(&["deploy", "staging", "v2"]);
    let ran_in = fs::read_to_string(sb.host("stage-1").join("health-ran-in")).unwrap();
    assert!(ran_in.trim().ends_with("/current"), "{ran_in}");
}

/// Item 7: a probe that times out is one failed probe, not the end of the
/// gate; a gate that runs out names the operator's command and the host, not
/// the script shipdeck wrapped it in.
#[test]
fn a_probe_that_times_out_counts_as_one_failed_probe() {
    let sb = Sandbox::new("");
    let cfg = fs::read_to_string(sb.root().join("shipdeck.toml")).unwrap();
    let slow_once = r#"if [ ! -f \"$SHIPDECK_DEPLOY_TO/slow-once\" ]; then touch \"$SHIPDECK_DEPLOY_TO/slow-once\"; sleep 3; fi; ./bin/healthy"#;
    fs::write(
        sb.root().join("shipdeck.toml"),
        cfg.replace(
            r#"command = "./bin/healthy""#,
            &format!("command = \"{slow_once}\"\ntimeout = \"300ms\""),
        )
        .replace(r#"gate = "1s""#, r#"gate = "5s""#),
    )
    .unwrap();
    sb.build("v1", "v1", false);
    let r = sb.run(&["deploy", "staging", "v1"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(sb.host("stage-1").join("slow-once").exists());
    assert_eq!(sb.current("stage-1").as_deref(), Some("releases/v1"));

    fs::write(
        sb.root().join("shipdeck.toml"),
        cfg.replace(
            r#"command = "./bin/healthy""#,
            "command = \"sleep 5\"\ntimeout = \"200ms\"",
        ),
    )
    .unwrap();
    sb.build("v2", "v2", false);
    let r = sb.run(&["deploy", "staging", "v2"]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(
        all.contains("health command `sleep 5` on local:hosts/stage-1: not healthy within 1s")
            && all.contains("no answer within 200ms"),
        "{all}"
    );
    assert!(!all.contains("export SHIPDECK_ENV"), "{all}");
    assert_eq!(sb.current("stage-1").as_deref(), Some("releases/v1"));
}

/// web-3 missed v3 (its restart failed, within `max_failures`): web-1 and
/// web-2 run v3 and go back to v2, web-3 runs v2 and its own history goes
/// back to v1.
fn with_web3_behind() -> Sandbox {
    let sb = Sandbox::new(r#"strategy = { kind = "rolling", batch = 3, max_failures = 1 }"#);
    sb.build("v1", "v1", false);
    sb.build("v2", "v2", false);
    sb.build("v3", "v3", true);
    for v in ["v1", "v2", "v3"] {
        sb.ok(&["deploy", "staging", v]);
        if v != "v3" {
            sb.ok(&["promote", v, "--to", "production"]);
        }
    }
    fs::write(sb.host("web-3").join("fail-restart"), "").unwrap();
    let r = sb.run(&["promote", "v3", "--to", "production"]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(sb.current("web-1").as_deref(), Some("releases/v3"));
    assert_eq!(sb.current("web-3").as_deref(), Some("releases/v2"));
    sb
}

/// Case 2: hosts that disagree about their previous release are never
/// rolled back into a mixed environment reported as done: the refusal names
/// each host's state, `status` marks the host that missed the change, and
/// `--to` brings the environment together.
#[test]
fn rollback_refuses_hosts_that_disagree_and_status_marks_the_one_behind() {
    let sb = with_web3_behind();
    let status = sb.ok(&["status", "production"]).stdout;
    assert!(
        status.contains("local:hosts/web-3: behind: runs v2, production on v3"),
        "{status}"
    );
    assert!(!status.contains("web-1: behind"), "{status}");

    let r = sb.run(&["rollback", "production", "--yes"]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    for said in [
        "would go back to different releases",
        "local:hosts/web-1: runs v3, its history goes back to v2",
        "local:hosts/web-3: runs v2, its history goes back to v1",
        "--to RELEASE",
    ] {
        assert!(r.stderr.contains(said), "{said}: {}", r.stderr);
    }
    assert_eq!(sb.current("web-1").as_deref(), Some("releases/v3"));
    assert_eq!(sb.current("web-3").as_deref(), Some("releases/v2"));

    sb.ok(&["rollback", "production", "--to", "v2", "--yes"]);
    all_on(&sb, "v2");
    let status = sb.ok(&["status", "production"]).stdout;
    assert!(!status.contains("behind"), "{status}");
}

/// Case 2: a rollback that switched a host and then failed its gate says
/// the host is on the target; history follows the host.
#[test]
fn a_rollback_whose_gate_fails_records_that_the_host_is_on_the_target() {
    let sb = on_v1_with_v2_built();
    fs::remove_file(sb.root().join("dist/bad")).ok();
    sb.ok(&["promote", "v2", "--to", "production"]);
    all_on(&sb, "v2");
    // v1 no longer passes its health check on web-2.
    fs::write(sb.host("web-2").join("releases/v1/unhealthy"), "").unwrap();
    let r = sb.run(&["rollback", "production", "--yes"]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    all_on(&sb, "v1");
    let last = last_record(&sb, "web-2");
    assert_eq!(last["action"], "rollback", "{last}");
    assert_eq!(last["release"], "v1", "{last}");
    assert_eq!(last["outcome"], "failed", "{last}");
    assert_eq!(last["switched"], true, "{last}");
    assert!(
        last["message"].as_str().unwrap().starts_with("on v1, but:"),
        "{last}"
    );
    // The environment agrees with itself: nobody is behind, and web-2's own
    // history puts it on v1 like the others.
    let status = sb.status_hosts("production");
    assert!(
        status
            .iter()
            .all(|s| s["current"] == "v1" && s["behind"].is_null()),
        "{status:?}"
    );
}

/// Case 2: a rollback keeps a journal like any change: killed half-way, it
/// shows as interrupted and `resume` finishes it, to where it was going
/// (never back into the release it was leaving).
#[test]
fn a_rollback_killed_half_way_is_finished_by_resume() {
    let sb = on_v1_with_v2_built();
    fs::remove_file(sb.root().join("dist/bad")).ok();
    sb.ok(&["promote", "v2", "--to", "production"]);
    fs::write(sb.host("web-3").join("hang-restart"), "").unwrap();
    sb.edit_config(
        r#"restart = "./bin/restart""#,
        r#"restart = "if [ -f \"$SHIPDECK_DEPLOY_TO/hang-restart\" ]; then sleep 5; fi; ./bin/restart""#,
    );
    let mut child = sb.spawn(&["rollback", "production", "--yes"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let done = |h: &str| {
        sb.current(h).as_deref() == Some("releases/v1")
            && !sb.host(h).join(".shipdeck/lock").exists()
    };
    while !(done("web-1") && done("web-2") && sb.current("web-3").as_deref() == Some("releases/v1"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the rollback never got there"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let journal: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(sb.host("web-3").join(".shipdeck/change.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(journal["kind"], "rollback", "{journal}");
    assert_eq!(journal["release"], "v1", "{journal}");
    let status = sb.ok(&["status", "production"]).stdout;
    assert!(status.contains("INTERRUPTED"), "{status}");

    fs::remove_file(sb.host("web-3").join("hang-restart")).unwrap();
    let r = sb.run(&["resume", "production"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("finishing the interrupted rollback"),
        "{}",
        r.stderr
    );
    all_on(&sb, "v1");
    for h in PROD {
        assert!(!sb.host(h).join(".shipdeck/lock").exists(), "{h}");
        assert!(!sb.host(h).join(".shipdeck/change.json").exists(), "{h}");
        let last = last_record(&sb, h);
        assert_eq!(
            (
                last["action"].as_str(),
                last["release"].as_str(),
                last["outcome"].as_str()
            ),
            (Some("rollback"), Some("v1"), Some("success")),
            "{h}: {last}"
        );
    }
}

/// Case 4: a change killed while it took its locks leaves locks and no
/// journal. `status` says it switched nothing; a deploy is refused naming
/// how to release it; `rollback` releases it and rolls nothing back.
#[test]
fn a_lock_left_before_any_journal_is_released_by_rollback_without_rolling_back() {
    let sb = on_v1_with_v2_built();
    fs::remove_file(sb.root().join("dist/bad")).ok();
    sb.ok(&["promote", "v2", "--to", "production"]);
    // A lock as this machine's shipdeck writes it, by a process now gone.
    sb.ok(&["lock", "production", "--reason", "template"]);
    let owner_path = |h: &str| sb.host(h).join(".shipdeck/lock/owner.json");
    let mut owner: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(owner_path("web-1")).unwrap()).unwrap();
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    owner["pid"] = gone.id().into();
    gone.wait().unwrap();
    owner["reason"] = "deploy v3 to production".into();
    owner["change"] = "c-killed-while-locking".into();
    for h in PROD {
        fs::write(owner_path(h), format!("{owner}\n")).unwrap();
    }

    let status = sb.ok(&["status", "production"]).stdout;
    assert!(
        status.contains("INTERRUPTED before it switched anything (nothing switched)"),
        "{status}"
    );
    let r = sb.run(&["deploy", "production", "v1"]);
    assert_eq!(r.code, 3, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("interrupted before it switched anything")
            && r.stderr
                .contains("`shipdeck rollback production` releases its lock"),
        "{}",
        r.stderr
    );
    let r = sb.run(&["resume", "production"]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains("releases that lock and rolls nothing back"),
        "{}",
        r.stderr
    );

    let r = sb.run(&["rollback", "production", "--yes"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("nothing was rolled back"), "{}", r.stdout);
    all_on(&sb, "v2");
    for h in PROD {
        assert!(!sb.host(h).join(".shipdeck/lock").exists(), "{h}");
        assert!(
            sb.history(h).iter().all(|r| r["action"] != "rollback"),
            "{h}: {:?}",
            sb.history(h)
        );
    }
}

/// Case 5: operators acting at once meet at the first host's lock: exactly
/// one switches the hosts, the others queue behind it (and then find the
/// release already there) or give up with exit 3 — never all of them.
#[test]
fn concurrent_deploys_have_exactly_one_winner() {
    let sb = on_v1_with_v2_built();
    fs::remove_file(sb.root().join("dist/bad")).ok();
    for wait in ["0s", "30s"] {
        let release = if wait == "0s" { "v2" } else { "v1" };
        let children: Vec<_> = (0..8)
            .map(|_| sb.spawn(&["deploy", "production", release, "--lock-wait", wait]))
            .collect();
        let outs: Vec<_> = children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect();
        let codes: Vec<i32> = outs.iter().map(|o| o.status.code().unwrap()).collect();
        let switched = outs
            .iter()
            .filter(|o| String::from_utf8_lossy(&o.stdout).contains("3 hosts switched"))
            .count();
        assert_eq!(
            switched,
            1,
            "--lock-wait {wait}: {codes:?}\n{}",
            outs.iter()
                .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
                .collect::<Vec<_>>()
                .join("\n---\n")
        );
        if wait == "0s" {
            assert!(codes.iter().all(|&c| c == 0 || c == 3), "{codes:?}");
        } else {
            // Queued long enough: the others found every host on it.
            assert!(
                codes.iter().all(|&c| c == 0),
                "{codes:?}\n{}",
                outs.iter()
                    .filter(|o| !o.status.success())
                    .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
                    .collect::<Vec<_>>()
                    .join("\n---\n")
            );
        }
        all_on(&sb, release);
        for h in PROD {
            assert!(!sb.host(h).join(".shipdeck/lock").exists(), "{h}");
        }
    }
}
