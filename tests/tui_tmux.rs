//! The real binary in a real terminal: tmux runs `shipdeck demo`, another
//! "terminal" deploys with the headless CLI, and the console must show it;
//! then `R` rolls back, checked on screen and on the host's `current` link.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

struct Tmux {
    socket: String,
    session: String,
}

impl Tmux {
    /// None (the test returns) when tmux is missing outside CI; with CI=true a
    /// missing tmux fails the test.
    fn start(command: &str, width: u16, height: u16) -> Option<Tmux> {
        if Command::new("tmux").arg("-V").output().is_err() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "tmux is required when CI=true: install tmux"
            );
            eprintln!("tmux not found: skipping the terminal test");
            return None;
        }
        // One tmux server per test: tests of one binary run side by side.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let t = Tmux {
            socket: format!("shipdeck-test-{}-{n}", std::process::id()),
            session: "console".into(),
        };
        let ok = t
            .cmd()
            .args([
                "new-session",
                "-d",
                "-s",
                &t.session,
                "-x",
                &width.to_string(),
                "-y",
                &height.to_string(),
                command,
            ])
            .status()
            .unwrap()
            .success();
        assert!(ok, "tmux new-session failed");
        Some(t)
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket]);
        c
    }

    fn screen(&self) -> String {
        let out = self
            .cmd()
            .args(["capture-pane", "-p", "-t", &self.session])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &str) {
        self.cmd()
            .args(["send-keys", "-t", &self.session, keys])
            .status()
            .unwrap();
    }

    /// Resize the window as a terminal being made smaller or larger would.
    fn resize(&self, width: u16, height: u16) {
        let ok = self
            .cmd()
            .args([
                "resize-window",
                "-t",
                &self.session,
                "-x",
                &width.to_string(),
                "-y",
                &height.to_string(),
            ])
            .status()
            .unwrap()
            .success();
        assert!(ok, "tmux resize-window failed");
    }

    /// The pid of the process the pane runs, while it runs.
    fn pane_pid(&self) -> Option<u32> {
        let out = self
            .cmd()
            .args([
                "list-panes",
                "-t",
                &self.session,
                "-F",
                "#{pane_dead} #{pane_pid}",
            ])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (dead, pid) = text.trim().split_once(' ')?;
        if dead != "0" {
            return None;
        }
        pid.parse().ok()
    }

    fn alive(&self) -> bool {
        self.cmd()
            .args(["has-session", "-t", &self.session])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// Poll the screen until `pred` holds; fail with the screen after `timeout`.
    fn wait_for(&self, what: &str, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; the screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Tmux {
    /// `q`, then the screen once the demo said goodbye (or its pane closed).
    fn quit(&self) -> String {
        self.keys("q");
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.alive() && Instant::now() < deadline {
            let s = self.screen();
            if s.contains("the demo sandbox stays in") {
                return s;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.screen()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").status();
    }
}

/// Up to the first host of the first environment (the console opens on
/// the environment changed last).
fn select_top(tmux: &Tmux) {
    for _ in 0..8 {
        tmux.keys("k");
    }
}

/// The line of the environments pane that shows `host`.
fn host_line<'a>(screen: &'a str, host: &str) -> &'a str {
    screen
        .lines()
        .find(|l| l.contains(&format!(" {host} ")) && l.contains('↩'))
        .unwrap_or("")
}

/// `shipdeck demo` in tmux at 120×40, once v1 shows on every host; with the
/// sandbox and the state folder its processes log to.
/// `shipdeck` against the demo sandbox, with the console's state folder:
/// what an operator runs headless beside the console.
fn headless(sandbox: &Path, state: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_shipdeck"));
    c.arg("--config")
        .arg(sandbox.join("shipdeck.toml"))
        .args(args)
        .env("XDG_STATE_HOME", state);
    c
}

fn open_demo(dir: &Path) -> Option<(Tmux, std::path::PathBuf, std::path::PathBuf, String)> {
    let sandbox = dir.join("demo");
    let state = dir.join("state");
    let command = format!(
        "XDG_STATE_HOME='{}' '{}' demo --dir '{}'; sleep 1",
        state.display(),
        env!("CARGO_BIN_EXE_shipdeck"),
        sandbox.display()
    );
    let tmux = Tmux::start(&command, 120, 40)?;
    // The demo builds its sandbox, starts v1 everywhere and opens the console.
    let s = tmux.wait_for("v1 on every host", Duration::from_secs(90), |s| {
        ["stage-1", "web-1", "web-2", "web-3"]
            .iter()
            .all(|h| host_line(s, h).contains(" v1 "))
    });
    Some((tmux, sandbox, state, s))
}

#[test]
fn the_console_sees_a_headless_deploy_and_rolls_back_with_r() {
    let dir = tempfile::tempdir().unwrap();
    let Some((tmux, sandbox, state, s)) = open_demo(dir.path()) else {
        return;
    };
    assert!(
        s.contains("Environments") && s.contains("Logs") && s.contains("Health"),
        "{s}"
    );

    // Another terminal deploys v2 to staging with the headless CLI.
    let out = headless(&sandbox, &state, &["deploy", "staging", "v2"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    tmux.wait_for("stage-1 on v2 on screen", Duration::from_secs(15), |s| {
        let l = host_line(s, "stage-1");
        l.contains(" v2 ") && l.contains("↩ v1")
    });

    // The console opened on the environment changed last (production-eu,
    // where the demo promoted v1 last); up to staging, which the footer
    // names with where R takes it.
    select_top(&tmux);
    tmux.wait_for("R naming staging", Duration::from_secs(5), |s| {
        s.contains("R  roll back staging → v1")
    });
    // One key: R on the selected environment, staging.
    tmux.keys("R");
    let s = tmux.wait_for("the rollback to finish", Duration::from_secs(30), |s| {
        s.contains("rolled staging back from v2 to v1")
    });
    assert_eq!(
        std::fs::read_link(sandbox.join("hosts/stage-1/current")).unwrap(),
        Path::new("releases/v1")
    );
    tmux.wait_for(
        "stage-1 back on v1 on screen",
        Duration::from_secs(15),
        |s| host_line(s, "stage-1").contains(" v1 "),
    );
    assert!(
        host_line(&s, "web-1").contains(" v1 "),
        "production was touched:\n{s}"
    );

    // q quits (nothing is running) and the terminal comes back.
    let s = tmux.quit();
    assert!(
        !tmux.alive() || s.contains("the demo sandbox stays in"),
        "the console did not quit:\n{s}"
    );
    assert!(
        !s.contains("Environments"),
        "the alternate screen was not left:\n{s}"
    );
}

#[test]
fn the_console_steers_a_canary_and_shows_a_bad_release_rolling_itself_back() {
    let dir = tempfile::tempdir().unwrap();
    let Some((tmux, sandbox, state, _)) = open_demo(dir.path()) else {
        return;
    };
    let headless = |args: &[&str]| {
        let out = headless(&sandbox, &state, args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let current = |host: &str| {
        std::fs::read_link(sandbox.join("hosts").join(host).join("current"))
            .unwrap()
            .to_string_lossy()
            .into_owned()
    };
    headless(&["deploy", "staging", "v2"]);

    // v2 (one below the newest release) to production (one below staging).
    select_top(&tmux);
    tmux.keys("Tab");
    tmux.keys("j");
    tmux.keys("Tab");
    tmux.keys("Tab");
    tmux.keys("j");
    tmux.keys("p");
    tmux.wait_for("the promotion to start", Duration::from_secs(10), |s| {
        s.contains("promoting v2 to production")
    });
    // web-1 alone, judged for 20 s: `n` goes on at once.
    tmux.wait_for("the timed pause", Duration::from_secs(30), |s| {
        s.contains("PAUSED after step 1 of 3") && s.contains("next step in")
    });
    assert_eq!(current("web-1"), "releases/v2");
    assert_eq!(current("web-2"), "releases/v1");
    tmux.keys("n");
    // Half the hosts, then a pause that waits for the operator: `P` goes
    // through every remaining step.
    tmux.wait_for("the operator's pause", Duration::from_secs(30), |s| {
        s.contains("PAUSED after step 2 of 3") && s.contains("WAITING FOR YOU")
    });
    assert_eq!(current("web-2"), "releases/v2");
    assert_eq!(current("web-3"), "releases/v1");
    tmux.keys("P");
    tmux.wait_for("v2 everywhere", Duration::from_secs(30), |s| {
        s.contains("promote v2 to production: 3 hosts switched")
    });
    for h in ["web-1", "web-2", "web-3"] {
        assert_eq!(current(h), "releases/v2", "{h}");
    }

    // v3 is healthy enough for staging; production's canary catches it.
    headless(&["deploy", "staging", "v3"]);
    tmux.keys("Tab");
    tmux.keys("k");
    tmux.keys("Tab");
    tmux.keys("Tab");
    tmux.keys("p");
    tmux.wait_for("the promotion of v3", Duration::from_secs(10), |s| {
        s.contains("promoting v3 to production")
    });
    let s = tmux.wait_for("the breach", Duration::from_secs(60), |s| {
        s.contains("CANARY BREACH, hosts put back")
    });
    assert!(
        s.contains("canary breach on web-1") && s.contains("(max_error_rate)"),
        "{s}"
    );
    // Under the breach: web-1's last log lines (which of them are errors is
    // chance, a third of its requests fail), each one as web-1 logged it.
    let shown: Vec<&str> = s
        .lines()
        .filter_map(|l| l.split_once("│  │ ").map(|(_, rest)| rest))
        // A line wider than the pane ends in `…`: what is shown is its start.
        .map(|l| l.trim_end_matches('│').trim_end().trim_end_matches('…'))
        .collect();
    assert!(!shown.is_empty(), "the failing host's log lines:\n{s}");
    let log_dir = sandbox.join("hosts/web-1/shared/log");
    let logged: String = ["app.log.1", "app.log"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(log_dir.join(f)).ok())
        .collect();
    for line in &shown {
        assert!(logged.contains(line), "{line:?} is not web-1's:\n{s}");
    }
    for h in ["web-1", "web-2", "web-3"] {
        assert_eq!(current(h), "releases/v2", "{h}");
    }
    tmux.wait_for("web-1 back on v2 on screen", Duration::from_secs(15), |s| {
        host_line(s, "web-1").contains(" v2 ")
    });
    let s = tmux.quit();
    assert!(
        !s.contains("Environments"),
        "the console did not quit:\n{s}"
    );
}

/// The shipdeck process under the pane's shell, if it still runs.
fn shipdeck_alive(tmux: &Tmux) -> bool {
    let Some(shell) = tmux.pane_pid() else {
        return false;
    };
    let out = Command::new("ps")
        .args(["-o", "comm=", "--ppid", &shell.to_string()])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.trim() == "shipdeck")
}

#[test]
fn a_terminal_too_small_says_so_and_the_console_lives_on() {
    let dir = tempfile::tempdir().unwrap();
    let Some((tmux, _sandbox, _state, _)) = open_demo(dir.path()) else {
        return;
    };
    assert!(shipdeck_alive(&tmux), "{}", tmux.screen());
    for (w, h) in [(80, 11), (120, 7)] {
        tmux.resize(w, h);
        let s = tmux.wait_for(
            &format!("the too-small line at {w}x{h}"),
            Duration::from_secs(10),
            |s| s.contains("terminal too small (need 60x15)"),
        );
        assert!(!s.contains("panicked"), "{s}");
        assert!(!s.contains("Environments"), "{s}");
        // Still drawing: a second look, a moment later, says the same.
        std::thread::sleep(Duration::from_millis(500));
        assert!(
            shipdeck_alive(&tmux),
            "the console died at {w}x{h}:\n{}",
            tmux.screen()
        );
        assert!(
            tmux.screen().contains("terminal too small"),
            "{}",
            tmux.screen()
        );
    }
    tmux.resize(120, 40);
    let s = tmux.wait_for("the whole console again", Duration::from_secs(10), |s| {
        s.contains("Environments")
            && s.contains("Logs")
            && ["stage-1", "web-1", "web-2", "web-3"]
                .iter()
                .all(|h| host_line(s, h).contains(" v1 "))
    });
    assert!(!s.contains("terminal too small"), "{s}");
    assert!(shipdeck_alive(&tmux));
    let s = tmux.quit();
    assert!(
        !s.contains("Environments"),
        "the console did not quit:\n{s}"
    );
}

#[test]
fn esc_never_cancels_c_asks_and_r_acts_on_the_selected_environment_only() {
    let dir = tempfile::tempdir().unwrap();
    let Some((tmux, sandbox, state, s)) = open_demo(dir.path()) else {
        return;
    };
    // The console opens on the environment changed last: R there says it
    // has nothing to go back to (v1 is all the demo ran), changing nothing.
    assert!(!s.contains("R  roll back"), "{s}");
    tmux.keys("R");
    tmux.wait_for("R on production-eu", Duration::from_secs(5), |s| {
        s.contains("production-eu not rolled back: no host of it has a release to go back to")
    });
    let out = headless(&sandbox, &state, &["deploy", "staging", "v2"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let current = |host: &str| {
        std::fs::read_link(sandbox.join("hosts").join(host).join("current"))
            .unwrap()
            .to_string_lossy()
            .into_owned()
    };
    // Promote v2 to production: its canary pauses after web-1.
    select_top(&tmux);
    for k in ["Tab", "j", "Tab", "Tab", "j", "p"] {
        tmux.keys(k);
    }
    tmux.wait_for("the canary's first pause", Duration::from_secs(30), |s| {
        s.contains("PAUSED after step 1 of 3")
    });
    assert_eq!(current("web-1"), "releases/v2");
    let paused = |s: &str| s.contains("PAUSED after step") && !s.contains("cancelled");

    // Esc, then ? Esc Esc: the help opens and closes, nothing else.
    for k in ["Escape", "?", "Escape", "Escape"] {
        tmux.keys(k);
        std::thread::sleep(Duration::from_millis(150));
    }
    let s = tmux.wait_for("the help closed", Duration::from_secs(5), |s| {
        !s.contains(" Keys ")
    });
    assert!(paused(&s), "{s}");
    assert!(!s.contains("CANCELLING") && !s.contains("c/Esc"), "{s}");
    assert!(s.contains("c  cancel"), "{s}");

    // production-eu selected: R is its rollback, refused while production's
    // canary runs; the canary is left alone.
    for _ in 0..3 {
        tmux.keys("j");
    }
    tmux.wait_for("c naming production", Duration::from_secs(5), |s| {
        s.contains("c  cancel production") && s.contains("select production to steer it")
    });
    tmux.keys("R");
    let s = tmux.wait_for("R refused", Duration::from_secs(5), |s| {
        s.contains("production-eu not rolled back: promote v2 → production is running")
    });
    assert!(paused(&s), "{s}");
    assert_eq!(current("web-1"), "releases/v2");

    // c asks; n leaves it running; c then y cancels it.
    tmux.keys("c");
    tmux.wait_for("the question", Duration::from_secs(5), |s| {
        s.contains("promote v2 → production is running.") && s.contains("y: cancel it")
    });
    tmux.keys("n");
    let s = tmux.wait_for("not cancelled", Duration::from_secs(5), |s| {
        s.contains("not cancelled: promote v2 → production goes on")
    });
    assert!(s.contains("promote v2 → production PAUSED"), "{s}");
    tmux.keys("c");
    tmux.wait_for("the question again", Duration::from_secs(5), |s| {
        s.contains("y: cancel it")
    });
    tmux.keys("y");
    tmux.wait_for("the change cancelled", Duration::from_secs(30), |s| {
        s.contains("cancelled, hosts put back")
    });
    assert_eq!(current("web-1"), "releases/v1");
    let s = tmux.quit();
    assert!(
        !s.contains("Environments"),
        "the console did not quit:\n{s}"
    );
}

#[test]
fn h_shows_the_history_enter_a_host_and_the_logs_page_back_and_follow_again() {
    let dir = tempfile::tempdir().unwrap();
    let Some((tmux, sandbox, state, _)) = open_demo(dir.path()) else {
        return;
    };
    let out = headless(&sandbox, &state, &["deploy", "staging", "v2"])
        .env("SHIPDECK_OPERATOR", "alice")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    tmux.wait_for("stage-1 on v2 on screen", Duration::from_secs(15), |s| {
        host_line(s, "stage-1").contains(" v2 ")
    });

    // H: the history of the selected environment (production-eu, changed
    // last), from its hosts; Tab: the next one, staging, newest first.
    tmux.keys("H");
    let s = tmux.wait_for("the history", Duration::from_secs(5), |s| {
        s.contains("History production-eu") && s.contains("promote")
    });
    assert!(
        s.contains("shipdeck-demo@") && s.contains("success 2/2"),
        "{s}"
    );
    tmux.keys("Tab");
    let s = tmux.wait_for("staging's history", Duration::from_secs(5), |s| {
        s.contains("History staging") && s.contains("v1 → v2")
    });
    let rows: Vec<&str> = s.lines().filter(|l| l.contains("success 1/1")).collect();
    assert!(rows.len() >= 2, "{s}");
    assert!(
        rows[0].contains("deploy") && rows[0].contains("v1 → v2") && rows[0].contains("alice@"),
        "newest first:\n{s}"
    );
    // Esc: back to the console, and never a change.
    tmux.keys("Escape");
    tmux.wait_for("the console again", Duration::from_secs(5), |s| {
        s.contains("Environments") && !s.contains("History staging")
    });

    // Enter on stage-1: what it runs, what R would go back to, its logs.
    select_top(&tmux);
    tmux.keys("Enter");
    let s = tmux.wait_for("stage-1's detail", Duration::from_secs(5), |s| {
        s.contains("stage-1 · staging") && s.contains("last log lines")
    });
    for want in [
        "runs         v2",
        "previous     v1 · rollback ready: on disk",
        "deploy v1 → v2 by alice@",
        "health       ✓ healthy",
        "lock         none",
    ] {
        assert!(s.contains(want), "{want}:\n{s}");
    }
    tmux.keys("Escape");
    tmux.wait_for("the console again", Duration::from_secs(5), |s| {
        s.contains("Logs all hosts · following")
    });

    // The logs page back, hold still while lines come, and follow again.
    tmux.keys("PPage");
    let paused = tmux.wait_for("the logs paged back", Duration::from_secs(5), |s| {
        s.contains("PAUSED ·") && s.contains("newer below")
    });
    std::thread::sleep(Duration::from_millis(1500));
    let later = tmux.screen();
    let logs = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| l.starts_with("│") && l.contains(" INFO "))
            .map(|l| l.chars().take(60).collect())
            .collect()
    };
    assert_eq!(logs(&paused), logs(&later), "paused logs moved:\n{later}");
    tmux.keys("End");
    tmux.wait_for("following again", Duration::from_secs(5), |s| {
        s.contains("Logs all hosts · following")
    });
    tmux.keys("g");
    tmux.wait_for("the oldest line, paused", Duration::from_secs(5), |s| {
        s.contains("PAUSED ·")
    });
    tmux.keys("G");
    tmux.wait_for("following again", Duration::from_secs(5), |s| {
        s.contains("Logs all hosts · following")
    });
    let s = tmux.quit();
    assert!(
        !s.contains("Environments"),
        "the console did not quit:\n{s}"
    );
}

/// A headless promote killed (`kill -9`) in its canary pause is shown
/// INTERRUPTED within a few seconds (the pid check at the monitor's state
/// tick), not as a change in progress for the journal's heartbeat.
#[test]
fn a_killed_headless_change_shows_interrupted_within_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let Some((tmux, sandbox, state, _)) = open_demo(dir.path()) else {
        return;
    };
    let out = headless(&sandbox, &state, &["deploy", "staging", "v2"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut promote = headless(&sandbox, &state, &["promote", "v2", "--to", "production"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let web1 = sandbox.join("hosts/web-1");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    // web-1 alone is switched and judged: the canary's first pause.
    while std::fs::read_link(web1.join("current"))
        .map(|l| l.to_string_lossy().into_owned())
        .ok()
        .as_deref()
        != Some("releases/v2")
        || !std::fs::read_to_string(web1.join(".shipdeck/change.json"))
            .ok()
            .and_then(|j| serde_json::from_str::<serde_json::Value>(&j).ok())
            .is_some_and(|j| j["pause"].is_object())
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the canary never paused"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    select_top(&tmux);
    tmux.keys("j");
    tmux.wait_for(
        "the change shown in progress",
        Duration::from_secs(15),
        |s| s.contains("IN PROGRESS"),
    );
    promote.kill().unwrap();
    promote.wait().unwrap();
    let killed = std::time::Instant::now();
    let s = tmux.wait_for(
        "the change shown interrupted",
        Duration::from_secs(15),
        |s| s.contains("INTERRUPTED") && !s.contains("IN PROGRESS"),
    );
    let took = killed.elapsed();
    assert!(s.contains("INTERRUPTED"), "{s}");
    eprintln!(
        "interrupted shown {:.1} s after kill -9",
        took.as_secs_f64()
    );
    // The hosts say the same: status agrees with the screen.
    let out = headless(&sandbox, &state, &["status", "production"])
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&out.stdout);
    assert!(status.contains("INTERRUPTED"), "{status}");
    tmux.quit();
}

/// Connections host `i`'s sshd has accepted so far (its log outlives a
/// restart).
fn logins(fleet: &support::SshdFleet, i: usize) -> usize {
    fleet.log(i).matches("Accepted publickey").count()
}

#[test]
fn the_first_r_after_opening_runs_on_connections_opened_ahead() {
    let Some(fleet) = support::SshdFleet::start(2) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("dist")).unwrap();
    let config = format!(
        "[app]\nname = \"hello\"\nartifact = \"dist\"\ndeploy_to = \"/unused\"\n\n\
         [logs]\nfiles = [\"shared/log/app.log\"]\n\n\
         [environments.production]\nhosts = {}\n\n{}\n",
        fleet.hosts_array(),
        fleet.ssh_section()
    );
    std::fs::write(root.join("shipdeck.toml"), config).unwrap();
    for id in ["v1", "v2"] {
        std::fs::write(root.join("dist/version"), id).unwrap();
        for args in [vec!["build", "--id", id], vec!["deploy", "production", id]] {
            let (code, out, err) = support::run(support::shipdeck_in(root).args(&args));
            assert_eq!(code, 0, "{args:?}:\n{out}\n{err}");
        }
    }
    let before: Vec<usize> = (0..2).map(|i| logins(&fleet, i)).collect();
    let home = root.join(".home");
    let command = format!(
        "cd '{}' && HOME='{}' XDG_STATE_HOME='{}' SHIPDECK_OPERATOR=alice '{}' -vv; sleep 1",
        root.display(),
        home.display(),
        home.join(".local/state").display(),
        env!("CARGO_BIN_EXE_shipdeck"),
    );
    let Some(tmux) = Tmux::start(&command, 120, 40) else {
        return;
    };
    tmux.wait_for("R naming production", Duration::from_secs(30), |s| {
        s.contains("R  roll back production → v1")
    });
    // Two connections a host are the monitor's (its poller and its log
    // follow); the third is the engine's, opened before any key.
    let deadline = Instant::now() + Duration::from_secs(20);
    while (0..2).any(|i| logins(&fleet, i) < before[i] + 3) {
        assert!(
            Instant::now() < deadline,
            "the engine did not connect ahead: {:?} logins since the console opened\n{}",
            (0..2)
                .map(|i| logins(&fleet, i) - before[i])
                .collect::<Vec<_>>(),
            std::fs::read_to_string(home.join(".local/state/shipdeck/shipdeck.log"))
                .unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Host 0's sshd dies with every session and comes back: its sessions
    // are opened again in the background, the engine's included, before
    // anyone presses a key.
    let mut fleet = fleet;
    let before_restart = logins(&fleet, 0);
    fleet.restart(0);
    let deadline = Instant::now() + Duration::from_secs(30);
    while logins(&fleet, 0) < before_restart + 3 {
        assert!(
            Instant::now() < deadline,
            "host 0's sessions were not all opened again: {} logins since its restart",
            logins(&fleet, 0) - before_restart
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let opened: Vec<usize> = (0..2).map(|i| logins(&fleet, i)).collect();

    tmux.keys("R");
    tmux.wait_for("the rollback to finish", Duration::from_secs(30), |s| {
        s.contains("rolled production back from v2 to v1")
    });
    for (i, opened) in opened.into_iter().enumerate() {
        assert_eq!(
            std::fs::read_link(fleet.deploy_to(i).join("current")).unwrap(),
            Path::new("releases/v1"),
            "host {i}"
        );
        assert_eq!(
            logins(&fleet, i),
            opened,
            "host {i}: the first R opened a connection of its own:\n{}",
            fleet.log(i)
        );
    }
    tmux.quit();
}
