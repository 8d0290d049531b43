//! A canary judged on a real app's own metrics, over real sshd hosts: the
//! app uses the official Python prometheus_client, labels its requests by
//! route template (`route="/users/{id}"`) and reports latency as a
//! histogram. A release with 30% 5xx breaches on error rate, one that is
//! 150 ms slower breaches on its histogram's p99, a healthy one passes, and
//! one whose metrics were renamed is inconclusive and says why.

mod support;

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

const HOSTS: [usize; 3] = [0, 1, 2];
const CLIENT: &str = "prometheus_client==0.26.0";

/// A Python with prometheus_client: a venv made once under cargo's target
/// dir. Without Python or the registry it is a skip, and with `CI=true` a
/// failure.
fn python() -> Option<PathBuf> {
    // Tests run in parallel: one makes the venv, the others wait for it.
    static MAKING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = MAKING.lock().unwrap_or_else(|p| p.into_inner());
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("py-prometheus-client");
    let py = venv.join("bin/python");
    let ready = |py: &Path| {
        Command::new(py)
            .args(["-c", "import prometheus_client"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !ready(&py) {
        let made = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success())
            && Command::new(&py)
                .args(["-m", "pip", "install", "-q", CLIENT])
                .status()
                .is_ok_and(|s| s.success());
        if !made || !ready(&py) {
            let why = format!(
                "cannot make a Python venv with {CLIENT} at {}",
                venv.display()
            );
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{why} (python3 and PyPI are required when CI=true)");
            }
            eprintln!("skipping: {why}");
            return None;
        }
    }
    Some(py)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Project {
    fleet: SshdFleet,
    dir: tempfile::TempDir,
}

/// Starts the release's app on the host's port (stopping the one before),
/// and returns once it listens.
const RESTART: &str = r#"#!/bin/sh
pidf="$SHIPDECK_DEPLOY_TO/app.pid"
if [ -f "$pidf" ]; then
    old=$(cat "$pidf")
    kill "$old" 2>/dev/null
    i=0
    while kill -0 "$old" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
fi
"$SHIPDECK_VAR_PY" bin/prom_app.py "$SHIPDECK_VAR_PORT" "$(cat mode)" > "$SHIPDECK_DEPLOY_TO/app.out" 2>&1 < /dev/null &
echo $! > "$pidf"
i=0
while [ $i -lt 100 ]; do
    "$SHIPDECK_VAR_PY" -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2)' "$SHIPDECK_VAR_PORT" 2>/dev/null && exit 0
    sleep 0.1
    i=$((i+1))
done
echo "the app does not listen on $SHIPDECK_VAR_PORT"
cat "$SHIPDECK_DEPLOY_TO/app.out"
exit 1
"#;

impl Project {
    fn new() -> Option<Project> {
        let fleet = SshdFleet::start(HOSTS.len())?;
        let py = python()?;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("dist/bin")).unwrap();
        let restart = root.join("dist/bin/restart");
        fs::write(&restart, RESTART).unwrap();
        Command::new("chmod")
            .arg("+x")
            .arg(&restart)
            .status()
            .unwrap();
        fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/apps/prom_app.py"),
            root.join("dist/bin/prom_app.py"),
        )
        .unwrap();
        let hosts: Vec<String> = HOSTS
            .iter()
            .map(|&i| {
                format!(
                    "{{ address = {}, deploy_to = {}, vars = {{ port = \"{}\", py = {} }} }}",
                    toml_str(&fleet.address(i)),
                    toml_str(&fleet.deploy_to(i).to_string_lossy()),
                    free_port(),
                    toml_str(&py.to_string_lossy()),
                )
            })
            .collect();
        let config = format!(
            r#"[app]
name = "users"
artifact = "dist"
deploy_to = "/unused"

[hooks]
restart = "./bin/restart"

[health]
http = "http://127.0.0.1:{{port}}/healthz"
interval = "500ms"
healthy_after = 2
gate = "15s"

[metrics]
prometheus = "http://127.0.0.1:{{port}}/metrics"
requests = 'http_requests_total{{route="/users/{{id}}"}}'
errors = 'http_requests_total{{code=~"5..", route="/users/{{id}}"}}'
latency = 'histogram_quantile(0.99, http_request_duration_seconds{{route="/users/{{id}}"}})'

[environments.production]
hosts = [{hosts}]
strategy = {{ kind = "canary", steps = ["1", "pause 8s", "100%"], max_error_rate = 0.05, max_latency_ms = 120 }}

{ssh}
"#,
            hosts = hosts.join(", "),
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
        run_timeout(&mut self.cmd(args), Duration::from_secs(120))
    }

    fn build(&self, id: &str, mode: &str) {
        fs::write(self.root().join("dist/mode"), format!("{mode}\n")).unwrap();
        let (code, out, err) = self.run(&["build", "--id", id]);
        assert_eq!(code, 0, "{out}\n{err}");
    }

    fn deploy(&self, id: &str) -> (i32, String, String) {
        self.run(&["deploy", "production", id])
    }

    fn assert_on(&self, release: &str) {
        for i in HOSTS {
            assert_eq!(
                readlink(self.fleet.deploy_to(i).join("current")).as_deref(),
                Some(format!("releases/{release}").as_str()),
                "host {i}"
            );
        }
    }

    /// The first release, on every host: its canary has no baseline.
    fn start_on_good_v1(&self) {
        self.build("v1", "good");
        let (code, out, err) = self.deploy("v1");
        assert_eq!(code, 0, "{out}\n{err}\n{}", self.fleet.logs());
        self.assert_on("v1");
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        for i in HOSTS {
            let pid = fs::read_to_string(self.fleet.deploy_to(i).join("app.pid")).ok();
            if let Some(pid) = pid.and_then(|p| p.trim().parse::<i32>().ok()) {
                // SAFETY: kill(2) on the pid of the app this test started.
                unsafe { libc::kill(pid, libc::SIGTERM) };
            }
        }
    }
}

#[test]
fn errors_and_latency_from_route_labels_and_a_histogram_breach() {
    let Some(p) = Project::new() else {
        return;
    };
    p.start_on_good_v1();

    p.build("v2", "errors");
    let (code, out, err) = p.deploy("v2");
    assert_eq!(code, 1, "{out}\n{err}");
    eprintln!("{err}");
    assert!(err.contains("canary breach on"), "{err}");
    assert!(err.contains(": error rate "), "{err}");
    assert!(err.contains("the threshold 5% (max_error_rate)"), "{err}");
    p.assert_on("v1");

    p.build("v3", "slow");
    let (code, out, err) = p.deploy("v3");
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("canary breach on"), "{err}");
    eprintln!("{err}");
    assert!(err.contains(": latency (metrics.latency) "), "{err}");
    assert!(
        err.contains("the threshold 120 ms (max_latency_ms)"),
        "{err}"
    );
    p.assert_on("v1");
}

#[test]
fn a_healthy_release_passes_and_renamed_metrics_are_no_data() {
    let Some(p) = Project::new() else {
        return;
    };
    p.start_on_good_v1();

    // Renamed metrics: the analysis waits for the operator, saying why.
    p.build("v2", "renamed");
    let log = p.root().join("renamed.log");
    let mut child: Child = p
        .cmd(&["deploy", "production", "v2"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    let said = loop {
        let now = fs::read_to_string(&log).unwrap_or_default();
        if now.contains("waiting for `shipdeck continue production`") {
            break now;
        }
        assert!(Instant::now() < deadline, "no pause in:\n{now}");
        std::thread::sleep(Duration::from_millis(200));
    };
    eprintln!("{said}");
    assert!(said.contains("analysis inconclusive"), "{said}");
    assert!(
        said.contains("the page has no metric named http_requests_total"),
        "{said}"
    );
    assert!(said.contains("/metrics of "), "{said}");
    let (code, out, err) = p.run(&["abort", "production"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "the aborted deploy did not end");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(1));
    p.assert_on("v1");

    p.build("v3", "good");
    let (code, out, err) = p.deploy("v3");
    assert_eq!(code, 0, "{out}\n{err}");
    let all = format!("{out}\n{err}");
    eprintln!("{all}");
    assert!(all.contains("canary analysis passed"), "{all}");
    assert!(all.contains("error rate 0% (max 5%)"), "{all}");
    assert!(all.contains("latency "), "{all}");
    p.assert_on("v3");
}
