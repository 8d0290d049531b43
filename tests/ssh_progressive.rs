//! Progressive delivery against real OpenSSH servers on 127.0.0.1: canary
//! analysis and its automatic rollback, pauses moved on from another process,
//! an interrupted change resumed or undone, deploy windows, rollback hooks,
//! notifications, and rollbacks across a schema migration.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

const HOSTS: [usize; 3] = [0, 1, 2];
const FROZEN: usize = 3;

struct Project {
    fleet: SshdFleet,
    dir: tempfile::TempDir,
}

impl Project {
    /// Three hosts in `production` with this strategy (an inline table), and
    /// one host in `frozen`, whose freeze never ends.
    fn new(strategy: &str) -> Option<Project> {
        let fleet = SshdFleet::start(4)?;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("dist/bin")).unwrap();
        let scripts = [
            (
                "restart",
                "#!/bin/sh\n[ -f \"$SHIPDECK_DEPLOY_TO/slow-restart\" ] && sleep 5\necho \"$SHIPDECK_RELEASE on $SHIPDECK_SLOT:$SHIPDECK_SLOT_PORT\" >> \"$SHIPDECK_DEPLOY_TO/restarts\"\n",
            ),
            (
                "switch",
                "#!/bin/sh\necho \"$SHIPDECK_SLOT $SHIPDECK_RELEASE\" > \"$SHIPDECK_DEPLOY_TO/traffic\"\n",
            ),
            (
                "stop",
                "#!/bin/sh\necho \"stopped $SHIPDECK_SLOT $SHIPDECK_RELEASE\" >> \"$SHIPDECK_DEPLOY_TO/stops\"\n",
            ),
            // A bad release passes its gate (two probes), then fails every
            // probe and logs an error, as a release does that breaks under load.
            (
                "health",
                "#!/bin/sh\n[ -f bad ] || exit 0\n\
                 f=\"$SHIPDECK_DEPLOY_TO/probes-$SHIPDECK_RELEASE\"\n\
                 n=$(cat \"$f\" 2>/dev/null || echo 0); echo $((n+1)) > \"$f\"\n\
                 [ \"$n\" -lt 2 ] && exit 0\n\
                 echo \"ERROR request $n failed: upstream timed out\" >> \"$SHIPDECK_DEPLOY_TO/shared/app.log\"\n\
                 echo 'HTTP 503'; exit 1\n",
            ),
            (
                "migrate",
                "#!/bin/sh\nif [ -f migrates ]; then echo 'shipdeck-migration: add users.email'; fi\n",
            ),
            (
                "on-rollback",
                "#!/bin/sh\necho \"$SHIPDECK_RELEASE from $SHIPDECK_PREVIOUS_RELEASE\" >> \"$SHIPDECK_DEPLOY_TO/on-rollback\"\n",
            ),
        ];
        for (name, body) in scripts {
            let path = root.join("dist/bin").join(name);
            fs::write(&path, body).unwrap();
            Command::new("chmod").arg("+x").arg(&path).status().unwrap();
        }
        let config = format!(
            r#"[app]
name = "hello"
artifact = "dist"
deploy_to = "/unused"
shared = ["log"]

[hooks]
restart = "./bin/restart"
run_once = ["./bin/migrate"]
on_rollback = ["./bin/on-rollback"]
notify = ["echo \"$SHIPDECK_EVENT $SHIPDECK_ENV $SHIPDECK_RELEASE $SHIPDECK_OUTCOME $SHIPDECK_WHO\" >> notify.log"]

[health]
command = "./bin/health"
interval = "300ms"
healthy_after = 2
gate = "10s"

[logs]
files = ["shared/app.log"]
error_pattern = "ERROR"

[environments.production]
hosts = {prod}
strategy = {strategy}

[environments.frozen]
hosts = {frozen}
freezes = ["year-end: 2000-01-01 .. 2100-01-01"]
timezone = "Europe/Berlin"

{ssh}
"#,
            prod = fleet.hosts_array_of(HOSTS),
            frozen = fleet.hosts_array_of([FROZEN]),
            ssh = fleet.ssh_section(),
        );
        fs::write(root.join("shipdeck.toml"), config).unwrap();
        Some(Project { fleet, dir })
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = shipdeck_in(self.root());
        c.args(args);
        c
    }

    fn run(&self, args: &[&str]) -> (i32, String, String) {
        run(&mut self.cmd(args))
    }

    fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args);
        assert_eq!(
            code,
            0,
            "shipdeck {args:?}:\n{out}\n{err}\n{}",
            self.fleet.logs()
        );
        out
    }

    /// A release; `bad` fails its health after the gate, `migrates` carries
    /// a schema migration.
    fn build(&self, id: &str, marks: &[&str]) {
        fs::write(self.root().join("dist/version"), format!("{id}\n")).unwrap();
        for mark in ["bad", "migrates"] {
            let path = self.root().join("dist").join(mark);
            if marks.contains(&mark) {
                fs::write(&path, "").unwrap();
            } else {
                let _ = fs::remove_file(&path);
            }
        }
        self.ok(&["build", "--id", id]);
    }

    /// Start a change in the background, its stderr in a file to watch.
    fn spawn(&self, args: &[&str], log: &str) -> (Child, PathBuf) {
        let path = self.root().join(log);
        let err = fs::File::create(&path).unwrap();
        let child = self
            .cmd(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .unwrap();
        (child, path)
    }

    fn deploy_to(&self, i: usize) -> PathBuf {
        self.fleet.deploy_to(i)
    }

    fn current(&self, i: usize) -> Option<String> {
        readlink(self.deploy_to(i).join("current"))
    }

    fn assert_on(&self, hosts: &[usize], release: &str) {
        for &i in hosts {
            assert_eq!(
                self.current(i).as_deref(),
                Some(format!("releases/{release}").as_str()),
                "host {i}"
            );
        }
    }

    fn history(&self, i: usize) -> Vec<serde_json::Value> {
        fs::read_to_string(self.deploy_to(i).join(".shipdeck/history.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn journal(&self, i: usize) -> Option<serde_json::Value> {
        let text = fs::read_to_string(self.deploy_to(i).join(".shipdeck/change.json")).ok()?;
        serde_json::from_str(&text).ok()
    }
}

fn canary(steps: &str) -> String {
    format!("{{ kind = \"canary\", steps = {steps} }}")
}

/// Wait until `file` contains `text`, or fail showing it.
fn wait_for(file: &Path, text: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let now = fs::read_to_string(file).unwrap_or_default();
        if now.contains(text) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no {text:?} within {within:?} in:\n{now}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_exit(child: &mut Child, within: Duration) -> i32 {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("the change did not end within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn actions(history: &[serde_json::Value]) -> Vec<String> {
    history
        .iter()
        .map(|r| {
            format!(
                "{} {} {}",
                r["action"].as_str().unwrap(),
                r["release"].as_str().unwrap_or("-"),
                r["outcome"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn a_canary_that_breaches_goes_back_by_itself_and_says_why() {
    let Some(p) = Project::new(&canary(r#"["1", "pause 3s", "100%"]"#)) else {
        return;
    };
    p.build("v1", &[]);
    p.ok(&["deploy", "production", "v1"]);
    p.assert_on(&HOSTS, "v1");

    p.build("v2", &["bad"]);
    let (code, out, err) = p.run(&["deploy", "production", "v2"]);
    assert_eq!(code, 1, "{out}\n{err}");
    // The metric, its value, the threshold, and the failing host's last lines.
    assert!(err.contains("canary breach on"), "{err}");
    assert!(err.contains("health pass rate"), "{err}");
    assert!(err.contains("min_health_pass_rate"), "{err}");
    assert!(err.contains("ERROR request"), "{err}");
    assert!(out.contains("every host runs what it ran before"), "{out}");
    p.assert_on(&HOSTS, "v1");

    // The canary host switched, then went back; the others never switched.
    let canary = actions(&p.history(0));
    assert!(
        canary.ends_with(&["deploy v2 failed".into(), "revert v1 success".into()]),
        "{canary:?}"
    );
    for i in [1, 2] {
        assert_eq!(actions(&p.history(i)).last().unwrap(), "deploy v2 failed");
    }
    // on_rollback ran where a host went back, in the release it went back to.
    assert_eq!(
        fs::read_to_string(p.deploy_to(0).join("on-rollback")).unwrap(),
        "v1 from v2\n"
    );
    assert!(!p.deploy_to(1).join("on-rollback").exists());
    // The change is over: no journal, no lock.
    for i in HOSTS {
        assert!(p.journal(i).is_none());
        assert!(!p.deploy_to(i).join(".shipdeck/lock").exists());
    }
    let notes = fs::read_to_string(p.root().join("notify.log")).unwrap();
    assert!(notes.contains("started production v2  alice"), "{notes}");
    assert!(
        notes.contains("breach production v2 rolled-back alice"),
        "{notes}"
    );
    assert!(
        notes.contains("finished production v2 rolled-back alice"),
        "{notes}"
    );
}

#[test]
fn a_pause_waits_for_continue_or_abort_from_another_process() {
    let Some(p) = Project::new(&canary(r#"["1", "pause", "100%"]"#)) else {
        return;
    };
    p.build("v1", &[]);
    // The first deploy pauses too: continue it through every step at once.
    let (mut first, log) = p.spawn(&["deploy", "production", "v1"], "first.log");
    wait_for(
        &log,
        "waiting for `shipdeck continue production`",
        Duration::from_secs(60),
    );
    let said = p.ok(&["continue", "production", "--all"]);
    assert!(
        said.contains("continue through every remaining step"),
        "{said}"
    );
    assert_eq!(wait_exit(&mut first, Duration::from_secs(60)), 0);
    p.assert_on(&HOSTS, "v1");

    p.build("v2", &[]);
    let (mut second, log) = p.spawn(&["deploy", "production", "v2"], "second.log");
    wait_for(
        &log,
        "waiting for `shipdeck continue production`",
        Duration::from_secs(60),
    );
    p.assert_on(&[0], "v2");
    p.assert_on(&[1, 2], "v1");
    let status = p.ok(&["status", "production"]);
    assert!(
        status.contains("in progress: deploy v2 by alice"),
        "{status}"
    );
    p.ok(&["abort", "production"]);
    assert_eq!(wait_exit(&mut second, Duration::from_secs(60)), 1);
    let err = fs::read_to_string(&log).unwrap();
    assert!(err.contains("aborted by alice@"), "{err}");
    p.assert_on(&HOSTS, "v1");

    let (mut third, log) = p.spawn(&["deploy", "production", "v2"], "third.log");
    wait_for(
        &log,
        "waiting for `shipdeck continue production`",
        Duration::from_secs(60),
    );
    p.ok(&["continue", "production"]);
    assert_eq!(wait_exit(&mut third, Duration::from_secs(60)), 0);
    p.assert_on(&HOSTS, "v2");
    assert!(
        fs::read_to_string(&log)
            .unwrap()
            .contains("continued by alice@")
    );

    let (code, _, err) = p.run(&["continue", "production"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("no change is in progress on production"),
        "{err}"
    );
}

#[test]
fn an_interrupted_change_is_shown_refused_to_others_and_resumed_from_its_step() {
    let Some(p) = Project::new(&canary(r#"["1", "pause", "100%"]"#)) else {
        return;
    };
    // v1 goes out through its own pause first.
    p.build("v1", &[]);
    let (mut first, log) = p.spawn(&["deploy", "production", "v1"], "first.log");
    wait_for(
        &log,
        "waiting for `shipdeck continue production`",
        Duration::from_secs(60),
    );
    p.ok(&["continue", "production", "--all"]);
    assert_eq!(wait_exit(&mut first, Duration::from_secs(60)), 0);

    p.build("v2", &[]);
    let (mut child, log) = p.spawn(&["deploy", "production", "v2"], "killed.log");
    wait_for(
        &log,
        "waiting for `shipdeck continue production`",
        Duration::from_secs(60),
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let journal = p.journal(0).expect("the canary host keeps its journal");
    assert_eq!(journal["release"], "v2");
    assert!(
        journal["done"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "record")
    );

    let status = p.ok(&["status", "production"]);
    assert!(
        status.contains("INTERRUPTED: deploy v2 by alice"),
        "{status}"
    );
    let (code, _, err) = p.run(&["deploy", "production", "v2"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("lock") || err.contains("resume"), "{err}");

    let (mut resumed, log) = p.spawn(&["resume", "production"], "resume.log");
    // It goes on with the pause it was in, without switching the canary again.
    wait_for(
        &log,
        "waiting for `shipdeck continue production`",
        Duration::from_secs(60),
    );
    p.ok(&["continue", "production"]);
    assert_eq!(
        wait_exit(&mut resumed, Duration::from_secs(60)),
        0,
        "{}",
        fs::read_to_string(&log).unwrap()
    );
    p.assert_on(&HOSTS, "v2");
    let deploys: Vec<serde_json::Value> = p
        .history(0)
        .into_iter()
        .filter(|r| r["action"] == "deploy" && r["release"] == "v2")
        .collect();
    assert_eq!(deploys.len(), 1, "the canary host switched once");
    let change = deploys[0]["change"].clone();
    for i in [1, 2] {
        let last = p.history(i).pop().unwrap();
        assert_eq!(
            (last["action"].clone(), last["change"].clone()),
            ("deploy".into(), change.clone())
        );
    }
    for i in HOSTS {
        assert!(p.journal(i).is_none(), "host {i} journal");
        assert!(!p.deploy_to(i).join(".shipdeck/lock").exists());
    }
}

#[test]
fn a_change_killed_after_a_switch_resumes_at_the_next_step() {
    let Some(p) = Project::new(r#"{ kind = "rolling", batch = 1 }"#) else {
        return;
    };
    p.build("v1", &[]);
    p.ok(&["deploy", "production", "v1"]);
    p.build("v2", &[]);
    // Host 1 (the second batch) restarts slowly: the operator's process is
    // killed right after its switch, while the restart runs.
    fs::write(p.deploy_to(1).join("slow-restart"), "").unwrap();
    let (mut child, log) = p.spawn(&["deploy", "production", "v2"], "killed.log");
    // Killed once the switch is journalled: the switch and its journal line
    // share one round trip, and a kill inside it is another case (the journal
    // then lags `current`, which resume must read from the host itself).
    let deadline = Instant::now() + Duration::from_secs(60);
    let journalled = |p: &Project| {
        p.journal(1).is_some_and(|j| {
            j["done"]
                .as_array()
                .is_some_and(|d| d.iter().any(|s| s == "switch"))
        })
    };
    while p.current(1).as_deref() != Some("releases/v2") || !journalled(&p) {
        assert!(Instant::now() < deadline, "host 1 never switched");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    fs::remove_file(p.deploy_to(1).join("slow-restart")).unwrap();
    p.assert_on(&[0, 1], "v2");
    p.assert_on(&[2], "v1");
    let journal = p.journal(1).expect("host 1 keeps its journal");
    let done: Vec<&str> = journal["done"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s.as_str())
        .collect();
    assert!(
        done.contains(&"switch") && !done.contains(&"record"),
        "{done:?}"
    );
    let status = p.ok(&["status", "production"]);
    assert!(status.contains("last step switch"), "{status}");

    let (code, out, err) = p.run(&["resume", "production"]);
    assert_eq!(
        code,
        0,
        "{out}\n{err}\n{}",
        fs::read_to_string(&log).unwrap()
    );
    // Host 1 is not switched again: it goes on from its restart.
    let host1 = p.fleet.address(1);
    assert!(
        err.lines().any(|l| l.contains(&host1)
            && l.contains("switch")
            && l.contains("done before the change was interrupted")),
        "{err}"
    );
    p.assert_on(&HOSTS, "v2");
    for i in HOSTS {
        let deploys = p
            .history(i)
            .into_iter()
            .filter(|r| r["action"] == "deploy" && r["release"] == "v2")
            .count();
        assert_eq!(deploys, 1, "host {i}: one history line for the one change");
        assert!(p.journal(i).is_none(), "host {i} journal");
    }
}

#[test]
fn rollback_undoes_an_interrupted_change() {
    let Some(p) = Project::new(&canary(r#"["1", "pause", "100%"]"#)) else {
        return;
    };
    p.build("v1", &[]);
    let (mut first, log) = p.spawn(&["deploy", "production", "v1"], "first.log");
    wait_for(
        &log,
        "waiting for `shipdeck continue production`",
        Duration::from_secs(60),
    );
    p.ok(&["continue", "production", "--all"]);
    assert_eq!(wait_exit(&mut first, Duration::from_secs(60)), 0);

    p.build("v2", &[]);
    let (mut child, log) = p.spawn(&["deploy", "production", "v2"], "killed.log");
    wait_for(
        &log,
        "waiting for `shipdeck continue production`",
        Duration::from_secs(60),
    );
    child.kill().unwrap();
    child.wait().unwrap();
    p.assert_on(&[0], "v2");

    let (code, out, err) = p.run(&["rollback", "production"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(err.contains("undoing the interrupted change"), "{err}");
    p.assert_on(&HOSTS, "v1");
    assert_eq!(
        actions(&p.history(0)).last().unwrap(),
        "rollback v1 success"
    );
    for i in [1, 2] {
        assert_eq!(
            actions(&p.history(i)).last().unwrap(),
            "deploy v1 success",
            "host {i} untouched"
        );
    }
    for i in HOSTS {
        assert!(p.journal(i).is_none());
        assert!(!p.deploy_to(i).join(".shipdeck/lock").exists());
    }
}

#[test]
fn a_freeze_refuses_a_change_unless_overridden_with_a_reason() {
    let Some(p) = Project::new(&canary(r#"["1", "100%"]"#)) else {
        return;
    };
    p.build("v1", &[]);
    let (code, _, err) = p.run(&["deploy", "frozen", "v1"]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("inside the freeze \"year-end\""), "{err}");
    assert!(err.contains("--override --reason"), "{err}");
    assert_eq!(p.current(FROZEN), None);
    assert!(p.history(FROZEN).is_empty());

    let (code, _, err) = p.run(&["deploy", "frozen", "v1", "--override"]);
    assert_eq!(code, 2, "--override needs --reason: {err}");

    p.ok(&[
        "deploy",
        "frozen",
        "v1",
        "--override",
        "--reason",
        "hotfix for INC-42",
    ]);
    p.assert_on(&[FROZEN], "v1");
    let line = p.history(FROZEN).pop().unwrap();
    let message = line["message"].as_str().unwrap();
    assert!(message.contains("window overridden by alice@"), "{message}");
    assert!(message.contains("hotfix for INC-42"), "{message}");
    // Rolling back is never refused by a window.
    p.build("v2", &[]);
    p.ok(&["deploy", "frozen", "v2", "--override", "--reason", "again"]);
    p.ok(&["rollback", "frozen"]);
    p.assert_on(&[FROZEN], "v1");

    // A deploy window that opens only the day after tomorrow.
    let days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .weekday()
        .to_monday_zero_offset() as usize;
    let open = days[(today + 2) % 7];
    let config = p.root().join("shipdeck.toml");
    let text = fs::read_to_string(&config).unwrap().replace(
        "freezes = [\"year-end: 2000-01-01 .. 2100-01-01\"]\ntimezone = \"Europe/Berlin\"",
        &format!("window = \"{open} 09:00-16:00\"\ntimezone = \"UTC\""),
    );
    fs::write(&config, text).unwrap();
    let (code, _, err) = p.run(&["deploy", "frozen", "v2"]);
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains(&format!("outside the deploy window {open} 09:00-16:00 UTC")),
        "{err}"
    );
    assert!(err.contains(&format!("next opens {open} 09:00")), "{err}");
    p.assert_on(&[FROZEN], "v1");
    p.ok(&[
        "deploy",
        "frozen",
        "v2",
        "--override",
        "--reason",
        "INC-43 hotfix",
    ]);
    p.assert_on(&[FROZEN], "v2");
    let line = p.history(FROZEN).pop().unwrap();
    let message = line["message"].as_str().unwrap();
    assert!(
        message.contains("outside the deploy window") && message.contains("INC-43 hotfix"),
        "{message}"
    );
}

#[test]
fn a_rollback_across_a_migration_needs_force() {
    let Some(p) = Project::new(&canary(r#"["100%"]"#)) else {
        return;
    };
    p.build("v1", &[]);
    p.ok(&["deploy", "production", "v1"]);
    p.build("v2", &["migrates"]);
    p.ok(&["deploy", "production", "v2"]);
    let line = p.history(0).pop().unwrap();
    assert!(
        line["migration"]
            .as_str()
            .unwrap()
            .contains("add users.email"),
        "{line}"
    );

    let (code, _, err) = p.run(&["rollback", "production"]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("crosses the schema migration of v2"), "{err}");
    assert!(err.contains("--force"), "{err}");
    p.assert_on(&HOSTS, "v2");

    p.ok(&["rollback", "production", "--force"]);
    p.assert_on(&HOSTS, "v1");
    for i in HOSTS {
        assert_eq!(
            fs::read_to_string(p.deploy_to(i).join("on-rollback")).unwrap(),
            "v1 from v2\n"
        );
    }
}

#[test]
fn blue_green_switches_traffic_and_rolls_back_without_a_restart_until_finished() {
    let Some(p) = Project::new(
        r#"{ kind = "blue-green", switch = "./bin/switch", stop = "./bin/stop", ports = [18081, 18082] }"#,
    ) else {
        return;
    };
    let read = |i: usize, f: &str| fs::read_to_string(p.deploy_to(i).join(f)).unwrap_or_default();
    let restarts = |i: usize| read(i, "restarts").lines().count();
    p.build("v1", &[]);
    p.build("v2", &[]);
    p.ok(&["deploy", "production", "v1"]);
    for i in HOSTS {
        assert_eq!(read(i, "traffic"), "blue v1\n");
        assert_eq!(read(i, "restarts"), "v1 on blue:18081\n");
        assert_eq!(
            readlink(p.deploy_to(i).join("slots/blue")).as_deref(),
            Some("../releases/v1")
        );
    }

    // v2 starts on green while blue keeps serving v1, then traffic moves.
    p.ok(&["deploy", "production", "v2"]);
    p.assert_on(&HOSTS, "v2");
    for i in HOSTS {
        assert_eq!(read(i, "traffic"), "green v2\n");
        assert!(read(i, "restarts").ends_with("v2 on green:18082\n"));
        assert_eq!(read(i, ".shipdeck/slot"), "green\n");
        assert!(p.deploy_to(i).join(".shipdeck/finish.json").exists());
    }

    // Before finishing, rolling back is the switch back: nothing restarts,
    // and green keeps v2 until finished.
    let before = restarts(0);
    p.ok(&["rollback", "production"]);
    p.assert_on(&HOSTS, "v1");
    for i in HOSTS {
        assert_eq!(read(i, "traffic"), "blue v1\n");
        let pending: serde_json::Value =
            serde_json::from_str(&read(i, ".shipdeck/finish.json")).unwrap();
        assert_eq!(
            (&pending["old"], &pending["old_release"]),
            (&"green".into(), &"v2".into())
        );
    }
    assert_eq!(restarts(0), before, "a switch back restarts nothing");
    let status = p.ok(&["status", "production"]);
    assert!(
        status.contains("blue live with v1; green still runs v2"),
        "{status}"
    );
    let line = p.history(0).pop().unwrap();
    assert!(
        line["message"]
            .as_str()
            .unwrap()
            .contains("nothing restarted"),
        "{line}"
    );

    // Finishing stops the old slot; after that a rollback starts v1 again.
    p.ok(&["deploy", "production", "v2"]);
    let out = p.ok(&["finish", "production"]);
    assert!(out.contains("finished production"), "{out}");
    for i in HOSTS {
        assert_eq!(read(i, "stops"), "stopped blue v1\n");
        assert!(!p.deploy_to(i).join(".shipdeck/finish.json").exists());
    }
    assert_eq!(actions(&p.history(0)).last().unwrap(), "finish v2 success");
    p.ok(&["rollback", "production"]);
    p.assert_on(&HOSTS, "v1");
    for i in HOSTS {
        assert_eq!(read(i, "traffic"), "blue v1\n");
        assert!(read(i, "restarts").ends_with("v1 on blue:18081\n"));
    }
}
