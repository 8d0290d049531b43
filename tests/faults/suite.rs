//! One suite: four real sshd hosts (staging 1, production 3), each host's
//! `deploy_to` on its own small tmpfs when running as root, a config whose
//! production strategy the seed picks, and releases v1..v4 built once.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::rng::Rng;
use crate::support::*;

pub const STAGING: usize = 0;
pub const PROD: [usize; 3] = [1, 2, 3];
pub const HOSTS: [usize; 4] = [0, 1, 2, 3];
pub const RELEASES: [&str; 4] = ["v1", "v2", "v3", "v4"];
pub const ENVS: [&str; 2] = ["staging", "production"];
/// Bytes of the payload every release ships: `current/payload` must have them.
pub const PAYLOAD: usize = 96 * 1024;
/// Each host's tmpfs.
const TMPFS_SIZE: &str = "6m";

/// Fails `restart` on the host whose deploy_to holds `fail-restart` naming
/// this release (or `*`); `health` likewise with `fail-health`.
const RESTART: &str = r#"#!/bin/sh
v=$(cat version)
m=$(cat "$SHIPDECK_DEPLOY_TO/fail-restart" 2>/dev/null) || exit 0
if [ "$m" = "*" ] || [ "$m" = "$v" ]; then echo "faults: $v does not start on this host" >&2; exit 1; fi
"#;
const HEALTH: &str = r#"#!/bin/sh
v=$(cat version)
m=$(cat "$SHIPDECK_DEPLOY_TO/fail-health" 2>/dev/null) || exit 0
if [ "$m" = "*" ] || [ "$m" = "$v" ]; then echo "faults: $v unhealthy"; exit 1; fi
"#;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    AllAtOnce,
    Rolling,
    Canary,
}

impl Strategy {
    pub fn pick(rng: &mut Rng) -> Strategy {
        *rng.pick(&[Strategy::AllAtOnce, Strategy::Rolling, Strategy::Canary])
    }

    fn toml(self) -> &'static str {
        match self {
            Strategy::AllAtOnce => r#"{ kind = "all-at-once" }"#,
            Strategy::Rolling => r#"{ kind = "rolling", batch = 1, max_failures = 0 }"#,
            Strategy::Canary => r#"{ kind = "canary", steps = ["1", "pause 1s", "100%"] }"#,
        }
    }
}

pub struct Suite {
    pub strategy: Strategy,
    pub fleet: SshdFleet,
    /// Each host's deploy_to is its own tmpfs (so a disk can fill up).
    pub tmpfs: bool,
    dir: tempfile::TempDir,
    mounted: Vec<PathBuf>,
}

impl Suite {
    /// `None` when sshd is missing and the test should skip.
    pub fn start(rng: &mut Rng) -> Option<Suite> {
        let fleet = SshdFleet::start(HOSTS.len())?;
        let strategy = Strategy::pick(rng);
        let dir = tempfile::Builder::new()
            .prefix("shipdeck-faults-")
            .tempdir()
            .expect("temp dir");
        let mut suite = Suite {
            strategy,
            fleet,
            tmpfs: false,
            dir,
            mounted: Vec::new(),
        };
        suite.mount_tmpfs();
        suite.write_project();
        for id in RELEASES {
            suite.build(id);
        }
        Some(suite)
    }

    /// As root: a tmpfs over every host's deploy_to, then every sshd started
    /// again, so that its own mount namespace (see the harness) has it too.
    fn mount_tmpfs(&mut self) {
        if !is_root() {
            return;
        }
        for i in HOSTS {
            let path = self.fleet.deploy_to(i);
            fs::create_dir_all(&path).expect("mkdir deploy_to");
            let ok = Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={TMPFS_SIZE},mode=0755")])
                .arg("tmpfs")
                .arg(&path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                self.unmount();
                return;
            }
            self.mounted.push(path);
        }
        for i in HOSTS {
            self.fleet.restart(i);
            let (code, out, err) = self.fleet.ssh(
                i,
                &format!("stat -f -c %T '{}'", self.fleet.deploy_to(i).display()),
            );
            assert_eq!(
                (code, out.trim()),
                (0, "tmpfs"),
                "host {i} does not see its tmpfs: {err}"
            );
        }
        self.tmpfs = true;
    }

    fn unmount(&mut self) {
        for path in self.mounted.drain(..) {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(&path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }

    fn write_project(&self) {
        let root = self.root();
        fs::create_dir_all(root.join("dist/bin")).unwrap();
        for (name, body) in [("restart", RESTART), ("health", HEALTH)] {
            let path = root.join("dist/bin").join(name);
            fs::write(&path, body).unwrap();
            let status = Command::new("chmod").arg("+x").arg(&path).status().unwrap();
            assert!(status.success());
        }
        fs::create_dir_all(root.join("rounds")).unwrap();
        let config = format!(
            r#"[app]
name = "faults"
artifact = "dist"
deploy_to = "/unused"
keep_releases = 3

[hooks]
restart = "./bin/restart"

[health]
command = "./bin/health"
interval = "100ms"
timeout = "2s"
healthy_after = 2
gate = "2s"

[environments.staging]
hosts = {staging}

[environments.production]
hosts = {prod}
requires = "staging"
strategy = {strategy}

{ssh}connect_timeout = "3s"
command_timeout = "30s"
"#,
            staging = self.fleet.hosts_array_of([STAGING]),
            prod = self.fleet.hosts_array_of(PROD),
            strategy = self.strategy.toml(),
            ssh = self.fleet.ssh_section(),
        );
        fs::write(root.join("shipdeck.toml"), config).unwrap();
    }

    fn build(&self, id: &str) {
        let root = self.root();
        fs::write(root.join("dist/version"), format!("{id}\n")).unwrap();
        fs::write(root.join("dist/payload"), payload(id)).unwrap();
        let (code, out, err) = run(&mut self.cmd(&["build", "--id", id]));
        assert_eq!(code, 0, "shipdeck build --id {id}:\n{out}\n{err}");
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Where a round's processes write their output.
    pub fn rounds_dir(&self) -> PathBuf {
        self.root().join("rounds")
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = shipdeck_in(self.root());
        c.args(args);
        c
    }

    pub fn deploy_to(&self, i: usize) -> PathBuf {
        self.fleet.deploy_to(i)
    }

    pub fn meta(&self, i: usize) -> PathBuf {
        self.deploy_to(i).join(".shipdeck")
    }

    pub fn current(&self, i: usize) -> Option<String> {
        readlink(self.deploy_to(i).join("current"))
    }

    /// The release `current` names, when it names `releases/<id>`.
    pub fn current_id(&self, i: usize) -> Option<String> {
        self.current(i)?
            .strip_prefix("releases/")
            .map(str::to_owned)
    }

    /// Why host `i`'s `current` is not a complete release, if it is not.
    pub fn incomplete(&self, i: usize) -> Option<String> {
        let Some(link) = self.current(i) else {
            return Some("no current symlink".into());
        };
        let Some(id) = link.strip_prefix("releases/") else {
            return Some(format!("current -> {link}, not releases/<id>"));
        };
        let dir = self.deploy_to(i).join("releases").join(id);
        if !dir.is_dir() {
            return Some(format!("current -> {link}, which does not exist"));
        }
        let version = fs::read_to_string(dir.join("version")).unwrap_or_default();
        if version.trim() != id {
            return Some(format!("{link}/version reads {:?}", version.trim()));
        }
        let size = fs::metadata(dir.join("payload")).map(|m| m.len()).ok();
        if size != Some(PAYLOAD as u64) {
            return Some(format!("{link}/payload has {size:?} bytes, not {PAYLOAD}"));
        }
        for f in ["bin/restart", "bin/health"] {
            if !dir.join(f).is_file() {
                return Some(format!("{link}/{f} is missing"));
            }
        }
        None
    }

    pub fn history_text(&self, i: usize) -> String {
        fs::read_to_string(self.meta(i).join("history.jsonl")).unwrap_or_default()
    }

    /// Host `i`'s last `n` history records, `action release outcome`.
    pub fn history_tail(&self, i: usize, n: usize) -> String {
        let text = self.history_text(i);
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..]
            .iter()
            .map(|l| match serde_json::from_str::<serde_json::Value>(l) {
                Ok(r) => format!(
                    "{} {} {}{}",
                    r["action"].as_str().unwrap_or("?"),
                    r["release"].as_str().unwrap_or("-"),
                    r["outcome"].as_str().unwrap_or("?"),
                    r["from"]
                        .as_str()
                        .map(|f| format!(" (from {f})"))
                        .unwrap_or_default()
                ),
                Err(_) => format!("unparsable {:?}", l.chars().take(60).collect::<String>()),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn has_lock(&self, i: usize) -> bool {
        self.meta(i).join("lock").exists()
    }

    pub fn has_journal(&self, i: usize) -> bool {
        self.meta(i).join("change.json").exists()
    }

    /// Every host's `current`, for a report.
    pub fn currents(&self) -> String {
        HOSTS
            .iter()
            .map(|&i| {
                let mut s = format!(
                    "host {i} ({}): {}",
                    env_of(i),
                    self.current(i).as_deref().unwrap_or("-")
                );
                if self.has_lock(i) {
                    s.push_str(" [lock]");
                }
                if self.has_journal(i) {
                    s.push_str(" [journal]");
                }
                s
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Fill host `i`'s tmpfs to the last byte.
    pub fn fill_disk(&self, i: usize) {
        use std::io::Write;
        let Ok(mut f) = fs::File::create(self.filler(i)) else {
            return;
        };
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        // Then whatever is left, a byte at a time (tmpfs counts pages).
        while f.write_all(&[0u8; 512]).is_ok() {}
        while f.write_all(&[0u8]).is_ok() {}
    }

    pub fn free_disk(&self, i: usize) {
        let _ = fs::remove_file(self.filler(i));
    }

    fn filler(&self, i: usize) -> PathBuf {
        self.deploy_to(i).join("filler")
    }
}

impl Drop for Suite {
    fn drop(&mut self) {
        for i in HOSTS {
            self.fleet.kill(i);
        }
        self.unmount();
    }
}

pub fn env_of(i: usize) -> &'static str {
    if i == STAGING {
        "staging"
    } else {
        "production"
    }
}

pub fn hosts_of(env: &str) -> &'static [usize] {
    if env == "staging" { &[STAGING] } else { &PROD }
}

/// A release's payload: the same bytes for the same id, incompressible, so
/// that an upload and an unpack take a moment.
fn payload(id: &str) -> Vec<u8> {
    let mut rng = Rng::new(id.bytes().fold(7, |h, b| h * 31 + u64::from(b)));
    (0..PAYLOAD / 8)
        .flat_map(|_| rng.next().to_le_bytes())
        .collect()
}

/// The last `n` lines of `text`, indented, for a report.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(n);
    lines[start..]
        .iter()
        .map(|l| format!("      | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
