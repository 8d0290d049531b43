//! The lifecycle against real OpenSSH servers on 127.0.0.1, started by the
//! harness: one staging host and three production hosts, each its own sshd.

mod support;

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use support::*;

const STAGING: usize = 0;
const PROD: [usize; 3] = [1, 2, 3];

struct Project {
    fleet: SshdFleet,
    dir: tempfile::TempDir,
}

impl Project {
    /// `extra` goes into `[environments.production]`; `tail` after everything.
    fn new(hooks: &str, extra: &str, tail: &str) -> Option<Project> {
        let fleet = SshdFleet::start(4)?;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("dist/bin")).unwrap();
        fs::write(root.join("dist/version"), "v1\n").unwrap();
        // Fails on hosts whose deploy_to holds `fail-restart`, for releases that ship `bad`.
        fs::write(
            root.join("dist/bin/restart"),
            "#!/bin/sh\nif [ -f bad ] && [ -f \"$SHIPDECK_DEPLOY_TO/fail-restart\" ]; then echo 'port 8080 in use' >&2; exit 1; fi\n\
             if [ -f \"$SHIPDECK_DEPLOY_TO/slow-restart\" ]; then sleep 3; fi\n\
             echo \"$SHIPDECK_RELEASE\" >> \"$SHIPDECK_DEPLOY_TO/restarts\"\n",
        )
        .unwrap();
        Command::new("chmod")
            .arg("+x")
            .arg(root.join("dist/bin/restart"))
            .status()
            .unwrap();
        let config = format!(
            r#"[app]
name = "hello"
artifact = "dist"
deploy_to = "/unused"
keep_releases = 3

[hooks]
restart = "./bin/restart"
{hooks}

[environments.staging]
hosts = {staging}

[environments.production]
hosts = {prod}
requires = "staging"
{extra}

{ssh}
{tail}
"#,
            staging = fleet.hosts_array_of([STAGING]),
            prod = fleet.hosts_array_of(PROD),
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

    fn build(&self, id: &str, bad: bool) {
        fs::write(self.root().join("dist/version"), format!("{id}\n")).unwrap();
        let marker = self.root().join("dist/bad");
        if bad {
            fs::write(&marker, "").unwrap();
        } else {
            let _ = fs::remove_file(&marker);
        }
        self.ok(&["build", "--id", id]);
    }

    fn deploy_to(&self, i: usize) -> PathBuf {
        self.fleet.deploy_to(i)
    }

    fn current(&self, i: usize) -> Option<String> {
        readlink(self.deploy_to(i).join("current"))
    }

    fn assert_prod_on(&self, release: &str) {
        for i in PROD {
            assert_eq!(
                self.current(i).as_deref(),
                Some(format!("releases/{release}").as_str()),
                "host {i}"
            );
            assert_eq!(
                fs::read_to_string(self.deploy_to(i).join("current/version"))
                    .unwrap()
                    .trim(),
                release
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
}

#[test]
fn deploy_promote_and_roll_back_over_ssh() {
    let Some(p) = Project::new("", "strategy = { kind = \"rolling\", batch = 2 }", "") else {
        return;
    };
    p.build("v1", false);
    p.build("v2", false);
    let out = p.ok(&["check"]);
    assert!(
        out.contains("4 hosts checked: 0 with problems, 0 locked"),
        "{out}"
    );

    p.ok(&["deploy", "staging", "v1"]);
    p.ok(&["promote", "v1", "--to", "production"]);
    p.assert_prod_on("v1");

    // Not yet through staging: refused, and nothing moves.
    let (code, _, err) = p.run(&["promote", "v2", "--to", "production"]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("has not passed staging on"), "{err}");
    p.assert_prod_on("v1");

    p.ok(&["deploy", "staging", "v2"]);
    p.ok(&["promote", "v2", "--to", "production"]);
    p.assert_prod_on("v2");
    for i in PROD {
        let h = p.history(i);
        let last = h.last().unwrap();
        assert_eq!(
            (
                last["action"].as_str(),
                last["release"].as_str(),
                last["outcome"].as_str()
            ),
            (Some("promote"), Some("v2"), Some("success"))
        );
        assert_eq!(last["sha256"].as_str().map(str::len), Some(64));
        // Uploaded once, verified, and the upload removed.
        assert_eq!(
            fs::read_dir(p.deploy_to(i).join(".shipdeck/uploads"))
                .unwrap()
                .count(),
            0
        );
    }

    p.ok(&["rollback", "production"]);
    p.assert_prod_on("v1");
    p.ok(&["rollback", "production", "--to", "v2"]);
    p.assert_prod_on("v2");
    let json = p.ok(&["status", "production", "--json"]);
    let status: Vec<serde_json::Value> = serde_json::from_value(
        serde_json::from_str::<serde_json::Value>(&json).unwrap()["hosts"].clone(),
    )
    .unwrap();
    assert!(
        status
            .iter()
            .all(|s| s["current"] == "v2" && s["reachable"] == true),
        "{json}"
    );

    // A release that is not on every host is refused, naming the hosts.
    fs::remove_dir_all(p.deploy_to(2).join("releases/v1")).unwrap();
    let (code, _, err) = p.run(&["rollback", "production", "--to", "v1"]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!("v1 is not on disk on {}", p.fleet.address(2))),
        "{err}"
    );
    p.assert_prod_on("v2");
}

#[test]
fn a_lock_held_by_another_operator_refuses_with_exit_3() {
    let Some(p) = Project::new("", "", "") else {
        return;
    };
    p.build("v1", false);
    let (code, _, err) = run(p
        .cmd(&["lock", "staging", "--reason", "db maintenance"])
        .env("SHIPDECK_OPERATOR", "bob"));
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = p.run(&["deploy", "staging", "v1"]);
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("locked by bob@") && err.contains("db maintenance"),
        "{err}"
    );
    assert_eq!(p.current(STAGING), None);
    let (code, _, _) = run(p
        .cmd(&["unlock", "staging"])
        .env("SHIPDECK_OPERATOR", "bob"));
    assert_eq!(code, 0);
    p.ok(&["deploy", "staging", "v1"]);
}

#[test]
fn an_unknown_host_key_is_refused_with_its_fingerprint() {
    let Some(p) = Project::new("", "", "") else {
        return;
    };
    p.build("v1", false);
    let partial = p.fleet.known_hosts_without(STAGING);
    let config = fs::read_to_string(p.root().join("shipdeck.toml")).unwrap();
    let config = config.replace(
        &toml_str(&p.fleet.known_hosts().to_string_lossy()),
        &toml_str(&partial.to_string_lossy()),
    );
    fs::write(p.root().join("shipdeck.toml"), config).unwrap();
    let (code, _, err) = p.run(&["deploy", "staging", "v1"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("is not in"), "{err}");
    assert!(
        err.contains(&p.fleet.fingerprint(STAGING)),
        "fingerprint missing: {err}"
    );
    assert!(!p.deploy_to(STAGING).exists(), "the host was touched");

    // Trusting it explicitly records it, and the next run needs no flag.
    p.ok(&["--accept-new-host-keys", "status", "staging"]);
    let known = fs::read_to_string(&partial).unwrap();
    assert!(
        known.contains(&format!("[127.0.0.1]:{}", p.fleet.port(STAGING))),
        "{known}"
    );
    p.ok(&["deploy", "staging", "v1"]);

    // A changed key is refused even with the flag.
    let mut lines: Vec<String> = known.lines().map(str::to_owned).collect();
    let other = p
        .fleet
        .host_public_key(1)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned();
    for l in lines
        .iter_mut()
        .filter(|l| l.starts_with(&format!("[127.0.0.1]:{} ", p.fleet.port(STAGING))))
    {
        let mut parts: Vec<&str> = l.split_whitespace().collect();
        parts[2] = &other;
        *l = parts.join(" ");
    }
    fs::write(&partial, lines.join("\n") + "\n").unwrap();
    let (code, _, err) = p.run(&["--accept-new-host-keys", "deploy", "staging", "v1"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("HAS CHANGED") && err.contains(&p.fleet.fingerprint(STAGING)),
        "{err}"
    );
    // Both fingerprints: the one offered and the one known_hosts recorded.
    let offered = format!("offered:  ssh-ed25519 {}", p.fleet.fingerprint(STAGING));
    let recorded = format!("recorded: ssh-ed25519 {}", p.fleet.fingerprint(1));
    assert_ne!(p.fleet.fingerprint(STAGING), p.fleet.fingerprint(1));
    assert!(
        err.contains(&offered) && err.contains(&recorded),
        "expected {offered:?} and {recorded:?} in:\n{err}"
    );
}

#[test]
fn a_release_id_with_shell_syntax_never_reaches_a_host() {
    let Some(p) = Project::new("", "", "") else {
        return;
    };
    for bad in [
        "v1;touch /tmp/shipdeck-pwned",
        "$(id)",
        "v1 v2",
        "../../etc",
    ] {
        let (code, _, err) = p.run(&["deploy", "staging", "--", bad]);
        assert_eq!(code, 2, "{bad}: {err}");
        assert!(err.contains("invalid release id"), "{err}");
        let (code, _, _) = p.run(&["rollback", "staging", &format!("--to={bad}")]);
        assert_eq!(code, 2);
    }
    assert!(!p.deploy_to(STAGING).exists());
    assert!(!Path::new("/tmp/shipdeck-pwned").exists());
}

#[test]
fn a_restart_failing_on_one_of_three_hosts_leaves_all_three_on_the_old_release() {
    let Some(p) = Project::new("", "", "") else {
        return;
    };
    p.build("v1", false);
    p.build("v2", true);
    p.ok(&["deploy", "staging", "v1"]);
    p.ok(&["promote", "v1", "--to", "production"]);
    p.ok(&["deploy", "staging", "v2"]);
    fs::write(p.deploy_to(2).join("fail-restart"), "").unwrap();
    let (code, out, err) = p.run(&["promote", "v2", "--to", "production"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("port 8080 in use"), "{err}");
    assert!(out.contains("every host runs what it ran before"), "{out}");
    p.assert_prod_on("v1");
    for i in PROD {
        assert!(!p.deploy_to(i).join(".shipdeck/lock").exists());
        assert!(
            p.history(i)
                .iter()
                .any(|r| r["release"] == "v2" && r["outcome"] == "failed")
        );
        let restarts = fs::read_to_string(p.deploy_to(i).join("restarts")).unwrap();
        assert_eq!(
            restarts.lines().last(),
            Some("v1"),
            "host {i} was not restarted on v1"
        );
    }
}

/// Serve `healthz` on a loopback port the hosts reach through their SSH
/// connection (direct-tcpip), as an app on the host would.
fn health_server(dir: &Path) -> (Child, u16) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    fs::write(dir.join("healthz"), "ok\n").unwrap();
    let child = Command::new("python3")
        .args([
            "-m",
            "http.server",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--directory",
        ])
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("python3 for a health endpoint");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "health server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, port)
}

#[test]
fn the_http_health_gate_is_probed_through_the_ssh_connection() {
    let www = tempfile::tempdir().unwrap();
    let (mut server, port) = health_server(www.path());
    let health = format!(
        "[health]\nhttp = \"http://127.0.0.1:{port}/healthz\"\ninterval = \"100ms\"\nhealthy_after = 2\ngate = \"2s\"\n"
    );
    let Some(p) = Project::new("", "", &health) else {
        return;
    };
    p.build("v1", false);
    p.build("v2", false);
    let out = p.ok(&["deploy", "staging", "v1"]);
    assert!(out.contains("1 host switched"), "{out}");
    let last = p.history(STAGING).pop().unwrap();
    assert_eq!(last["health"], "passed");

    // The endpoint goes away: the gate fails and the host goes back.
    server.kill().unwrap();
    server.wait().unwrap();
    let (code, _, err) = p.run(&["deploy", "staging", "v2"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not healthy within 2s"), "{err}");
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert_eq!(p.current(STAGING).as_deref(), Some("releases/v1"));
}

#[test]
fn an_sshd_killed_mid_deploy_leaves_no_host_half_switched() {
    // Rolling one host at a time; host 2's restart is slow, and its sshd
    // dies while the restart runs, after host 1 already switched.
    let Some(mut p) = Project::new("", "strategy = { kind = \"rolling\", batch = 1 }", "") else {
        return;
    };
    // A payload big enough that unpacking is not instant.
    let blob: Vec<u8> = (0..8 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fs::write(p.root().join("dist/blob"), &blob).unwrap();
    p.build("v1", false);
    p.build("v2", false);
    p.ok(&["deploy", "staging", "v1"]);
    p.ok(&["promote", "v1", "--to", "production"]);
    p.ok(&["deploy", "staging", "v2"]);
    fs::write(p.deploy_to(2).join("slow-restart"), "").unwrap();

    let child = p
        .cmd(&["promote", "v2", "--to", "production"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Kill host 2's sshd once its switch has happened (the restart is running).
    let deadline = Instant::now() + Duration::from_secs(60);
    while p.current(2).as_deref() != Some("releases/v2") {
        assert!(Instant::now() < deadline, "host 2 never switched");
        std::thread::sleep(Duration::from_millis(5));
    }
    p.fleet.kill(2);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");

    // Every host's current exists and names a complete release.
    for i in PROD {
        let cur = p
            .current(i)
            .unwrap_or_else(|| panic!("host {i} has no current"));
        assert!(
            cur == "releases/v1" || cur == "releases/v2",
            "host {i}: {cur}"
        );
        assert_eq!(
            fs::read(p.deploy_to(i).join("current/blob")).unwrap().len(),
            blob.len(),
            "host {i}"
        );
        let hidden: Vec<_> = fs::read_dir(p.deploy_to(i).join("releases"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(hidden.is_empty(), "host {i} keeps half-unpacked {hidden:?}");
    }
    // Host 1 was put back; the unreachable host 2 is named for the operator.
    assert_eq!(p.current(1).as_deref(), Some("releases/v1"));
    assert_eq!(p.current(3).as_deref(), Some("releases/v1"));
    assert!(
        stdout.contains("COULD NOT PUT BACK") && stdout.contains(&p.fleet.address(2)),
        "{stdout}"
    );

    // Recovery: the host comes back. From another machine the dead change's
    // lock holds, naming its holder, until it is broken with a reason.
    p.fleet.restart(2);
    let elsewhere = |args: &[&str]| {
        let mut c = p.cmd(args);
        c.env("SHIPDECK_MACHINE", "laptop-2");
        run(&mut c)
    };
    let (code, _, err) = elsewhere(&["rollback", "production", "--to", "v1"]);
    assert_eq!(code, 3, "the dead change's lock must hold: {err}");
    assert!(err.contains("promote v2 to production"), "{err}");
    let (code, _, err) = elsewhere(&["unlock", "production", "--force", "--yes"]);
    assert_eq!(code, 2, "breaking a lock needs a reason: {err}");
    assert!(err.contains("--reason"), "{err}");
    let (code, out, err) = elsewhere(&[
        "unlock",
        "production",
        "--force",
        "--yes",
        "--reason",
        "operator process lost its host",
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    let broke = p
        .history(2)
        .into_iter()
        .rev()
        .find(|h| h["action"] == "unlock")
        .expect("the broken lock is in the history");
    assert_eq!(broke["machine"], "laptop-2", "{broke}");
    assert!(
        broke["message"]
            .as_str()
            .unwrap_or_default()
            .contains("operator process lost its host"),
        "{broke}"
    );
    p.ok(&["rollback", "production", "--to", "v1"]);
    p.assert_prod_on("v1");
}

#[test]
fn logs_follow_every_host_prefixed() {
    let Some(p) = Project::new(
        "",
        "",
        "[logs]\nfiles = [\"log/app.log\"]\nerror_pattern = \"ERROR\"\n",
    ) else {
        return;
    };
    // Relative log paths resolve on the host from deploy_to; make them absolute per host instead.
    let config = fs::read_to_string(p.root().join("shipdeck.toml")).unwrap();
    let config = config.replace(
        "files = [\"log/app.log\"]",
        "command = \"tail -F -n 20 ../../log/app.log 2>/dev/null\"",
    );
    fs::write(p.root().join("shipdeck.toml"), config).unwrap();
    p.build("v1", false);
    p.ok(&["deploy", "staging", "v1"]);
    p.ok(&["deploy", "production", "v1"]);
    for i in PROD {
        fs::create_dir_all(p.deploy_to(i).join("log")).unwrap();
        fs::write(
            p.deploy_to(i).join("log/app.log"),
            format!("hello from host {i}\nERROR boom {i}\n"),
        )
        .unwrap();
    }
    let mut child = p
        .cmd(&["logs", "production", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = first_lines(&mut child, 6, Duration::from_secs(20));
    assert_eq!(lines.len(), 6, "{lines:?}");
    let parsed: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for i in PROD {
        let host = p.fleet.address(i);
        assert!(
            parsed.iter().any(|l| l["host"] == host.as_str()
                && l["line"] == format!("hello from host {i}")
                && l["error"] == false),
            "{lines:?}"
        );
        assert!(
            parsed
                .iter()
                .any(|l| l["host"] == host.as_str() && l["error"] == true),
            "{lines:?}"
        );
    }
}

/// Issue 10, case 6: a dead host is often why you roll back. Without the
/// flag the refusal names the unreachable host and the flag; with
/// `--skip-unreachable` every host that answers goes back, the rest are
/// named and recorded, `status` marks the one behind once it is back, and
/// `rollback --to` brings it in line.
#[test]
fn rollback_skips_an_unreachable_host_when_told_and_status_marks_it_behind() {
    let Some(mut p) = Project::new("", "", "") else {
        return;
    };
    p.build("v1", false);
    p.build("v2", false);
    p.ok(&["deploy", "staging", "v1"]);
    p.ok(&["promote", "v1", "--to", "production"]);
    p.ok(&["deploy", "staging", "v2"]);
    p.ok(&["promote", "v2", "--to", "production"]);
    p.fleet.kill(2);

    let (code, out, err) = p.run(&["rollback", "production", "--yes"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        err.contains("cannot reach every host of production; nothing was changed")
            && err.contains(&p.fleet.address(2))
            && err.contains("--skip-unreachable"),
        "{err}"
    );
    p.assert_prod_on("v2");

    let (code, out, err) = p.run(&["rollback", "production", "--skip-unreachable", "--yes"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("LEFT OUT (unreachable)") && out.contains(&p.fleet.address(2)),
        "{out}"
    );
    for i in [1, 3] {
        assert_eq!(p.current(i).as_deref(), Some("releases/v1"), "host {i}");
        let last = p.history(i).pop().unwrap();
        assert_eq!(last["action"], "rollback", "{last}");
        assert!(
            last["message"].as_str().is_some_and(
                |m| m.contains("left out, unreachable") && m.contains(&p.fleet.address(2))
            ),
            "{last}"
        );
        assert!(!p.deploy_to(i).join(".shipdeck/lock").exists(), "host {i}");
    }
    assert_eq!(p.current(2).as_deref(), Some("releases/v2"));

    p.fleet.restart(2);
    let status = p.ok(&["status", "production"]);
    assert!(
        status.contains(&format!(
            "{}: behind: runs v2, production on v1",
            p.fleet.address(2)
        )),
        "{status}"
    );
    p.ok(&["rollback", "production", "--to", "v1", "--yes"]);
    p.assert_prod_on("v1");
    let status = p.ok(&["status", "production"]);
    assert!(!status.contains("behind"), "{status}");
}
