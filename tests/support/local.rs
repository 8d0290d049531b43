//! A sandbox whose hosts are local directories (the `local:` transport): the
//! lifecycle tests that need no sshd use it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Sandbox {
    dir: tempfile::TempDir,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Sandbox {
    /// staging: 1 host; production: 3 hosts, requires staging.
    pub fn new(extra: &str) -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("dist/bin")).unwrap();
        fs::write(root.join("dist/version"), "v1\n").unwrap();
        // The restart hook fails on hosts that carry a `fail-restart` file in
        // shared/, and only for releases that carry `bad`.
        fs::write(
            root.join("dist/bin/restart"),
            "#!/bin/sh\nif [ -f bad ] && [ -f \"$SHIPDECK_DEPLOY_TO/fail-restart\" ]; then echo 'cannot bind :8080' >&2; exit 1; fi\nif [ -f \"$SHIPDECK_DEPLOY_TO/fail-restart-$SHIPDECK_RELEASE\" ]; then echo 'cannot bind :8080' >&2; exit 1; fi\necho \"$SHIPDECK_RELEASE\" >> \"$SHIPDECK_DEPLOY_TO/restarts\"\n",
        )
        .unwrap();
        fs::write(
            root.join("dist/bin/healthy"),
            "#!/bin/sh\n! [ -f unhealthy ]\n",
        )
        .unwrap();
        for f in ["restart", "healthy"] {
            Command::new("chmod")
                .arg("+x")
                .arg(root.join("dist/bin").join(f))
                .status()
                .unwrap();
        }
        let config = format!(
            r#"[app]
name = "hello"
build = "touch build-ran"
artifact = "dist"
deploy_to = "/unused"
keep_releases = 3
shared = ["log"]

[hooks]
restart = "./bin/restart"

[health]
command = "./bin/healthy"
interval = "50ms"
healthy_after = 2
gate = "1s"

[environments.staging]
hosts = ["local:hosts/stage-1"]

[environments.production]
hosts = ["local:hosts/web-1", "local:hosts/web-2", "local:hosts/web-3"]
requires = "staging"
{extra}
"#
        );
        fs::write(root.join("shipdeck.toml"), config).unwrap();
        Sandbox { dir }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn host(&self, name: &str) -> PathBuf {
        self.root().join("hosts").join(name)
    }

    pub fn run_as(&self, who: &str, args: &[&str]) -> Run {
        let out = Command::new(env!("CARGO_BIN_EXE_shipdeck"))
            .args(args)
            .current_dir(self.root())
            .env("SHIPDECK_OPERATOR", who)
            .env("XDG_STATE_HOME", self.root().join("state"))
            .output()
            .unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Replace `from` (which must be there) by `to` in `shipdeck.toml`.
    pub fn edit_config(&self, from: &str, to: &str) {
        let path = self.root().join("shipdeck.toml");
        let text = fs::read_to_string(&path).unwrap();
        assert!(
            text.contains(from),
            "{from:?} is not in the config:\n{text}"
        );
        fs::write(path, text.replace(from, to)).unwrap();
    }

    /// Start shipdeck without waiting, its output piped.
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        Command::new(env!("CARGO_BIN_EXE_shipdeck"))
            .args(args)
            .current_dir(self.root())
            .env("SHIPDECK_OPERATOR", "alice")
            .env("XDG_STATE_HOME", self.root().join("state"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_as("alice", args)
    }

    /// `status ENV --json`'s hosts, each as the JSON object scripts read.
    pub fn status_hosts(&self, env: &str) -> Vec<serde_json::Value> {
        let r = self.ok(&["status", env, "--json"]);
        let v: serde_json::Value = serde_json::from_str(&r.stdout)
            .unwrap_or_else(|e| panic!("status --json is not JSON ({e}):\n{}", r.stdout));
        serde_json::from_value(v["hosts"].clone())
            .unwrap_or_else(|e| panic!("status --json has no hosts list ({e}):\n{}", r.stdout))
    }

    pub fn ok(&self, args: &[&str]) -> Run {
        let r = self.run(args);
        assert_eq!(
            r.code, 0,
            "shipdeck {args:?} failed:\n{}\n{}",
            r.stdout, r.stderr
        );
        r
    }

    pub fn build(&self, id: &str, version: &str, bad: bool) {
        fs::write(self.root().join("dist/version"), version).unwrap();
        let marker = self.root().join("dist/bad");
        if bad {
            fs::write(&marker, "").unwrap();
        } else {
            let _ = fs::remove_file(&marker);
        }
        self.ok(&["build", "--id", id]);
    }

    pub fn current(&self, host: &str) -> Option<String> {
        fs::read_link(self.host(host).join("current"))
            .ok()
            .map(|p| p.to_string_lossy().into_owned())
    }

    pub fn history(&self, host: &str) -> Vec<serde_json::Value> {
        fs::read_to_string(self.host(host).join(".shipdeck/history.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

pub const PROD: [&str; 3] = ["web-1", "web-2", "web-3"];

pub fn all_on(sb: &Sandbox, release: &str) {
    for h in PROD {
        assert_eq!(
            sb.current(h).as_deref(),
            Some(format!("releases/{release}").as_str()),
            "{h}"
        );
    }
}
