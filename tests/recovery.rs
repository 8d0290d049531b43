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
    let cfg = fs::read_to_string(sb.root().join("shipdeck.toml")).unwrap();
    fs::write(
        sb.root().join("shipdeck.toml"),
        cfg.replace(
            r#"command = "./bin/healthy""#,
            r#"command = "pwd > \"$SHIPDECK_DEPLOY_TO/health-ran-in\"; ./bin/healthy""#,
        ),
    )
    .unwrap();
    sb.build("v2", "v2", false);
    sb.ok(&["deploy", "staging", "v2"]);
    let ran_in = fs::read_to_string(sb.host("stage-1").join("health-ran-in")).unwrap();
    assert!(ran_in.trim().ends_with("/current"), "{ran_in}");
}
