//! What a person at a shell gets: help with examples and exit codes, flags
//! only where they apply, completions, the man page, -q and -v.

mod support;

use std::process::Command;

use support::local::Sandbox;

fn shipdeck(args: &[&str]) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_shipdeck"))
        .args(args)
        .current_dir(dir.path())
        .env("XDG_STATE_HOME", dir.path().join("state"))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_shows_examples_and_exit_codes_and_flags_only_where_they_apply() {
    let (code, top, _) = shipdeck(&["--help"]);
    assert_eq!(code, 0);
    for want in [
        "Examples:",
        "shipdeck deploy staging v1",
        "Exit codes:",
        "3  locked",
        "docs/json.md",
        "--readonly",
        "-v, --verbose",
        "-q, --quiet",
        "completions",
        "init",
    ] {
        assert!(top.contains(want), "--help lacks {want:?}:\n{top}");
    }
    let (_, deploy, _) = shipdeck(&["deploy", "--help"]);
    let described = |arg: &str, help: &str| {
        deploy
            .lines()
            .any(|l| l.trim_start().starts_with(arg) && l.contains(help))
    };
    assert!(described("<ENV>", "The environment"), "{deploy}");
    assert!(described("<RELEASE>", "The release"), "{deploy}");
    for want in [
        "--readonly",
        "--lock-wait",
        "--events",
        "Examples:",
        "Exit codes:",
    ] {
        assert!(
            deploy.contains(want),
            "deploy --help lacks {want:?}:\n{deploy}"
        );
    }
    let (_, status, _) = shipdeck(&["status", "--help"]);
    let lists = |help: &str, flag: &str| {
        help.lines()
            .any(|l| l.trim_start().starts_with(flag) || l.contains(&format!(", {flag}")))
    };
    for absent in ["--readonly", "--lock-wait", "--events", "--yes"] {
        assert!(
            !lists(&status, absent),
            "status --help lists {absent}:\n{status}"
        );
    }
    assert!(status.contains("Exit codes:"), "{status}");
    // A flag where it means nothing is refused, not ignored.
    let (code, _, err) = shipdeck(&["status", "--lock-wait", "1s"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn completions_and_man_come_from_the_same_definitions() {
    for shell in ["bash", "zsh", "fish"] {
        let (code, out, err) = shipdeck(&["completions", shell]);
        assert_eq!(code, 0, "{shell}: {err}");
        for word in ["deploy", "rollback", "lock-wait"] {
            assert!(out.contains(word), "{shell} completion lacks {word}");
        }
    }
    let (code, _, _) = shipdeck(&["completions", "tcsh"]);
    assert_eq!(code, 2);
    let (code, page, _) = shipdeck(&["man"]);
    assert_eq!(code, 0);
    assert!(
        page.starts_with(".ie") || page.contains(".TH shipdeck"),
        "{page}"
    );
    assert!(page.contains("rollback"), "{page}");
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = shipdeck(&["man", "--dir", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    for page in ["shipdeck.1", "shipdeck-deploy.1", "shipdeck-rollback.1"] {
        let text = std::fs::read_to_string(dir.path().join(page)).unwrap();
        assert!(text.contains(".TH"), "{page}");
    }
}

#[test]
fn quiet_prints_nothing_on_success_and_verbose_copies_the_log_to_stderr() {
    let sb = Sandbox::new("");
    sb.build("v1", "v1", false);
    let r = sb.run(&["-q", "deploy", "staging", "v1"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!((r.stdout.as_str(), r.stderr.as_str()), ("", ""));
    // Still an error when there is one.
    let r = sb.run(&["-q", "deploy", "staging", "v9"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("error:"), "{}", r.stderr);

    let r = sb.run(&["status", "staging"]);
    assert!(!r.stderr.contains("INFO"), "{}", r.stderr);
    let r = sb.run(&["-v", "status", "staging"]);
    assert!(
        r.stderr.contains("INFO") && r.stderr.contains("start"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("DEBUG"), "{}", r.stderr);
    let log = sb.root().join("state/shipdeck/shipdeck.log");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("start"), "{text}");
    let (code, _, err) = shipdeck(&["-q", "-v", "status"]);
    assert_eq!(code, 2, "{err}");
}

/// Poll a tmux pane until it shows `want`.
fn wait_for_pane(session: &str, want: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", session])
            .output()
            .expect("tmux is needed for this test");
        let screen = String::from_utf8_lossy(&out.stdout).into_owned();
        if screen.contains(want) {
            return screen;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {want:?} on screen:\n{screen}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn init_on_a_terminal_asks_the_app_name_and_first_host() {
    let dir = tempfile::tempdir().unwrap();
    let session = format!("shipdeck-init-{}", std::process::id());
    let command = format!(
        "cd {} && {} init; sleep 30",
        dir.path().display(),
        env!("CARGO_BIN_EXE_shipdeck")
    );
    let started = Command::new("tmux")
        .args(["new-session", "-d", "-s", &session, "-x", "120", "-y", "30"])
        .arg(&command)
        .status()
        .expect("tmux is needed for this test");
    assert!(started.success());
    let kill = || {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &session])
            .status();
    };
    wait_for_pane(&session, "App name [");
    let keys = |k: &[&str]| {
        Command::new("tmux")
            .args(["send-keys", "-t", &session])
            .args(k)
            .status()
            .unwrap()
    };
    keys(&["my-app", "Enter"]);
    wait_for_pane(&session, "First staging host");
    keys(&["deploy@stage-1.example.com:2222", "Enter"]);
    let screen = wait_for_pane(&session, "wrote shipdeck.toml");
    kill();
    let text = std::fs::read_to_string(dir.path().join("shipdeck.toml"))
        .unwrap_or_else(|e| panic!("{e}:\n{screen}"));
    assert!(text.contains("name = \"my-app\""), "{text}");
    assert!(
        text.contains("hosts = [\"deploy@stage-1.example.com:2222\"]"),
        "{text}"
    );
}
