//! Test support: real `sshd` servers on loopback, and helpers to run the
//! `shipdeck` binary.
//!
//! Used by several integration tests through `mod support;`, each of which uses
//! only part of it, hence the `dead_code` allowance.
//!
//! One [`SshdFleet`] = one temp dir holding a user key, `authorized_keys`,
//! `known_hosts` and, per host `i`, its own host key, `sshd_config`, pid file and
//! log under `sshd/host-<i>/`, and its own (not yet created) deploy directory
//! `hosts/host-<i>/app`. Each sshd runs in the foreground (`-D`) as a child of
//! the test process, on its own port on 127.0.0.1, and logs in the current user
//! (root in CI). See shared/TESTING.md for why each config line is there.
#![allow(dead_code)]

pub mod local;

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where Debian's openssh-server puts the daemon.
pub const SSHD: &str = "/usr/sbin/sshd";

/// How long a started sshd may take to accept connections.
const READY_DEADLINE: Duration = Duration::from_secs(10);

/// How long [`run`] lets a command run before killing it and failing the test.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(180);

/// `/usr/sbin/sshd` if it is installed.
pub fn sshd_path() -> Option<PathBuf> {
    let p = Path::new(SSHD);
    p.is_file().then(|| p.to_path_buf())
}

/// The sshd to use, or `None` when the test should return early.
///
/// A missing sshd is a failure when `CI=true` and a skip (with a line on
/// stderr) otherwise.
pub fn require_sshd() -> Option<PathBuf> {
    if let Some(p) = sshd_path() {
        return Some(p);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("sshd is required when CI=true: install openssh-server ({SSHD} not found)");
    }
    eprintln!("skipping: {SSHD} not found (install openssh-server; with CI=true this fails)");
    None
}

/// The login name of the user running the tests (the user every fleet host
/// logs in).
pub fn current_user() -> String {
    let out = Command::new("id").arg("-un").output();
    if let Ok(out) = out
        && out.status.success()
    {
        let name = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if !name.is_empty() {
            return name;
        }
    }
    std::env::var("USER").expect("cannot tell the current user: `id -un` failed and USER unset")
}

/// Whether the tests run as root.
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A TOML basic string holding `s`.
pub fn toml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

struct Host {
    port: u16,
    /// `<tmp>/sshd/host-<i>`: config, host key, pid file, log.
    dir: PathBuf,
    /// `"ssh-ed25519 AAAA…"` from the host key's `.pub`.
    public_key: String,
    child: Option<Child>,
}

impl Host {
    fn config(&self) -> PathBuf {
        self.dir.join("sshd_config")
    }
    fn host_key(&self) -> PathBuf {
        self.dir.join("ssh_host_ed25519_key")
    }
    fn pid_file(&self) -> PathBuf {
        self.dir.join("sshd.pid")
    }
    fn log_file(&self) -> PathBuf {
        self.dir.join("sshd.log")
    }
    fn stderr_file(&self) -> PathBuf {
        self.dir.join("sshd.stderr")
    }

    fn write_config(&self, authorized_keys: &Path) {
        let config = format!(
            "Port {port}\n\
             ListenAddress 127.0.0.1\n\
             HostKey {host_key}\n\
             PidFile {pid}\n\
             AuthorizedKeysFile {ak}\n\
             PermitRootLogin prohibit-password\n\
             PubkeyAuthentication yes\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             UsePAM no\n\
             StrictModes no\n\
             MaxStartups 200:30:300\n\
             Subsystem sftp internal-sftp\n\
             AllowTcpForwarding yes\n\
             PrintMotd no\n\
             UseDNS no\n\
             LogLevel VERBOSE\n",
            port = self.port,
            host_key = self.host_key().display(),
            pid = self.pid_file().display(),
            ak = authorized_keys.display(),
        );
        fs::write(self.config(), config).expect("write sshd_config");
    }

    /// Start sshd in the foreground (`-D`) as our child; with `mask`
    /// (`(empty file, ~/.bashrc)`), in its own mount namespace where the
    /// empty file is bind-mounted over the login user's ~/.bashrc.
    fn spawn(&mut self, mask: Option<&(PathBuf, PathBuf)>) {
        assert!(
            self.child.is_none(),
            "sshd on port {} already running",
            self.port
        );
        let _ = fs::remove_file(self.pid_file());
        let stderr = File::create(self.stderr_file()).expect("create sshd stderr file");
        let mut cmd = match mask {
            Some((empty, bashrc)) => {
                let mut cmd = Command::new("unshare");
                cmd.args(["-m", "--propagation", "private", "sh", "-c"])
                    .arg(r#"mount --bind "$1" "$2" || exit 97; shift 2; exec "$@""#)
                    .arg("sh")
                    .arg(empty)
                    .arg(bashrc)
                    .arg(SSHD);
                cmd
            }
            None => Command::new(SSHD),
        };
        let child = cmd
            .arg("-D")
            .arg("-f")
            .arg(self.config())
            .arg("-E")
            .arg(self.log_file())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {SSHD}: {e}"));
        self.child = Some(child);
    }

    /// Wait until the sshd we started has written its pid (it does so after it
    /// has bound its port, so the port is ours) and accepts TCP connections.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_DEADLINE;
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let pid_file = self.pid_file();
        let child = self.child.as_mut().ok_or("sshd not started")?;
        let pid = child.id();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Err(format!("sshd on port {} exited: {status}", self.port));
            }
            let pid_written = fs::read_to_string(&pid_file)
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok())
                == Some(pid);
            if pid_written && TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "sshd on port {} not ready after {:?}",
                    self.port, READY_DEADLINE
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILL the listener and every process below it (the per-connection
    /// sshd processes and what they run), then reap the listener.
    fn kill(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        kill_tree(child.id());
        let _ = child.wait();
        let _ = fs::remove_file(self.pid_file());
    }

    fn diagnostics(&self) -> String {
        format!(
            "--- sshd config {} ---\n{}\n--- sshd stderr ---\n{}\n--- sshd log ---\n{}",
            self.config().display(),
            fs::read_to_string(self.config()).unwrap_or_default(),
            fs::read_to_string(self.stderr_file()).unwrap_or_default(),
            fs::read_to_string(self.log_file()).unwrap_or_default(),
        )
    }
}

/// `pid -> (state, ppid)` for every process visible in /proc.
fn process_table() -> HashMap<u32, (char, u32)> {
    let mut table = HashMap::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return table;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid …"; comm may hold spaces and parens.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next().and_then(|s| s.chars().next()).unwrap_or('?');
        let ppid = fields.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        table.insert(pid, (state, ppid));
    }
    table
}

/// `root` and all its descendants, per one snapshot of /proc.
fn tree(root: u32) -> Vec<u32> {
    let table = process_table();
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        let parent = out[i];
        let children: Vec<u32> = table
            .iter()
            .filter(|(pid, (_, ppid))| *ppid == parent && !out.contains(pid))
            .map(|(pid, _)| *pid)
            .collect();
        out.extend(children);
        i += 1;
    }
    out
}

fn signal(sig: &str, pids: &[u32]) {
    if pids.is_empty() {
        return;
    }
    let _ = Command::new("kill")
        .arg("-s")
        .arg(sig)
        .args(pids.iter().map(|p| p.to_string()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Freeze the tree under `root` (SIGSTOP until no new process shows up, so
/// nothing forks past us), then SIGKILL all of it and wait until every one of
/// those processes is gone or a zombie (its sockets are closed by then).
///
/// sshd's per-connection processes call setsid(), so a process group would not
/// reach them; they are found as children of the listener instead.
fn kill_tree(root: u32) {
    let mut stopped: Vec<u32> = Vec::new();
    for _ in 0..50 {
        let new: Vec<u32> = tree(root)
            .into_iter()
            .filter(|p| !stopped.contains(p))
            .collect();
        if new.is_empty() {
            break;
        }
        signal("STOP", &new);
        stopped.extend(new);
    }
    signal("KILL", &stopped);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let table = process_table();
        let alive = stopped
            .iter()
            .filter(|p| **p != root)
            .any(|p| matches!(table.get(p), Some((state, _)) if *state != 'Z' && *state != 'X'));
        if !alive {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// When the tests run as root and root has a ~/.bashrc, the sshds run in
/// their own mount namespace with an empty file over it: on these machines it
/// runs `pyenv init`, which adds about 250 ms to every remote command (bash
/// reads ~/.bashrc when sshd starts it). Off with `SHIPDECK_TEST_KEEP_BASHRC=1`,
/// and left out when `unshare`/`mount` do not work here.
fn bashrc_mask(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    if !is_root() || std::env::var_os("SHIPDECK_TEST_KEEP_BASHRC").is_some() {
        return None;
    }
    let bashrc = PathBuf::from("/root/.bashrc");
    if !bashrc.is_file() {
        return None;
    }
    let empty = dir.join("empty-bashrc");
    fs::write(&empty, "").ok()?;
    let works = Command::new("unshare")
        .args(["-m", "--propagation", "private", "mount", "--bind"])
        .arg(&empty)
        .arg(&bashrc)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    works.then_some((empty, bashrc))
}

/// Free TCP ports on 127.0.0.1: bound all at once (so they differ), then released.
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("local_addr").port())
        .collect()
}

fn keygen(path: &Path, comment: &str) -> String {
    let out = Command::new("ssh-keygen")
        .args(["-t", "ed25519", "-N", "", "-q", "-C", comment, "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .expect("run ssh-keygen (install openssh-client)");
    assert!(
        out.status.success(),
        "ssh-keygen -f {} failed: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let public = fs::read_to_string(path.with_extension("pub")).expect("read .pub key");
    public
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// N sshd "hosts" on 127.0.0.1, one process and port each, all letting the
/// current user in with one key. Dropping it kills every process it started
/// and removes its temp dir.
pub struct SshdFleet {
    hosts: Vec<Host>,
    user: String,
    /// `(empty file, /root/.bashrc)` when root's bashrc is masked (see
    /// [`SshdFleet::start`]).
    mask: Option<(PathBuf, PathBuf)>,
    // Last field: dropped after the hosts are killed (see Drop).
    dir: tempfile::TempDir,
}

impl SshdFleet {
    /// Start `n` hosts. `None` only when sshd is missing and the test should
    /// skip (see [`require_sshd`]); any other failure panics with the sshd log.
    pub fn start(n: usize) -> Option<SshdFleet> {
        require_sshd()?;
        if is_root() {
            // "Missing privilege separation directory" otherwise.
            fs::create_dir_all("/run/sshd").expect("mkdir -p /run/sshd");
        }
        let dir = tempfile::Builder::new()
            .prefix("shipdeck-sshd-")
            .tempdir()
            .expect("create temp dir");
        let root = dir.path();
        keygen(&root.join("id_ed25519"), "shipdeck-test-user");
        fs::copy(root.join("id_ed25519.pub"), root.join("authorized_keys"))
            .expect("write authorized_keys");

        let mask = bashrc_mask(root);
        let mut fleet = SshdFleet {
            hosts: Vec::with_capacity(n),
            user: current_user(),
            mask,
            dir,
        };
        let ports = free_ports(n);
        for (i, port) in ports.into_iter().enumerate() {
            let host_dir = fleet.dir.path().join("sshd").join(format!("host-{i}"));
            fs::create_dir_all(&host_dir).expect("create sshd dir");
            fs::create_dir_all(fleet.host_dir(i)).expect("create host dir");
            let mut host = Host {
                port,
                dir: host_dir,
                public_key: String::new(),
                child: None,
            };
            host.public_key = keygen(&host.host_key(), &format!("host-{i}"));
            host.write_config(&fleet.authorized_keys());
            host.spawn(fleet.mask.as_ref());
            fleet.hosts.push(host);
        }
        // All are starting in parallel; now wait for each, retrying on a
        // fresh port when another process took ours in the meantime.
        for i in 0..n {
            let mut attempt = 0;
            loop {
                let authorized_keys = fleet.authorized_keys();
                let mask = fleet.mask.clone();
                let host = &mut fleet.hosts[i];
                match host.wait_ready() {
                    Ok(()) => break,
                    Err(e) => {
                        attempt += 1;
                        if attempt >= 5 {
                            panic!("sshd host {i}: {e}\n{}", host.diagnostics());
                        }
                        host.kill();
                        host.port = free_ports(1)[0];
                        host.write_config(&authorized_keys);
                        host.spawn(mask.as_ref());
                    }
                }
            }
        }
        let all = fleet.known_hosts_text(None);
        fs::write(fleet.known_hosts(), all).expect("write known_hosts");
        Some(fleet)
    }

    /// Number of hosts.
    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// The fleet's temp dir.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The user every host logs in (the current user).
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The private key that every host accepts.
    pub fn identity(&self) -> PathBuf {
        self.dir().join("id_ed25519")
    }

    pub fn authorized_keys(&self) -> PathBuf {
        self.dir().join("authorized_keys")
    }

    /// `known_hosts` with every host's key as `[127.0.0.1]:PORT ssh-ed25519 …`.
    pub fn known_hosts(&self) -> PathBuf {
        self.dir().join("known_hosts")
    }

    /// A known_hosts file holding every host's key except host `i`'s.
    pub fn known_hosts_without(&self, i: usize) -> PathBuf {
        let path = self.dir().join(format!("known_hosts_without_{i}"));
        fs::write(&path, self.known_hosts_text(Some(i))).expect("write known_hosts");
        path
    }

    /// Host `i`'s line in known_hosts.
    pub fn known_hosts_line(&self, i: usize) -> String {
        format!(
            "[127.0.0.1]:{} {}",
            self.hosts[i].port, self.hosts[i].public_key
        )
    }

    fn known_hosts_text(&self, except: Option<usize>) -> String {
        (0..self.len())
            .filter(|i| Some(*i) != except)
            .map(|i| self.known_hosts_line(i) + "\n")
            .collect()
    }

    /// Host `i`'s key fingerprint as ssh-keygen prints it: `SHA256:…`.
    pub fn fingerprint(&self, i: usize) -> String {
        let public = self.hosts[i].host_key().with_extension("pub");
        let out = Command::new("ssh-keygen")
            .arg("-lf")
            .arg(&public)
            .output()
            .expect("run ssh-keygen -lf");
        assert!(
            out.status.success(),
            "ssh-keygen -lf {} failed",
            public.display()
        );
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .nth(1)
            .expect("ssh-keygen -lf output")
            .to_owned()
    }

    /// Host `i`'s public key, `ssh-ed25519 AAAA…`.
    pub fn host_public_key(&self, i: usize) -> &str {
        &self.hosts[i].public_key
    }

    pub fn port(&self, i: usize) -> u16 {
        self.hosts[i].port
    }

    /// `USER@127.0.0.1:PORT`.
    pub fn address(&self, i: usize) -> String {
        format!("{}@127.0.0.1:{}", self.user, self.hosts[i].port)
    }

    /// `<tmp>/hosts/host-<i>`: exists, and is the parent of [`Self::deploy_to`].
    pub fn host_dir(&self, i: usize) -> PathBuf {
        self.dir().join("hosts").join(format!("host-{i}"))
    }

    /// `<tmp>/hosts/host-<i>/app`: host `i`'s deploy directory, not created
    /// (shipdeck must create it).
    pub fn deploy_to(&self, i: usize) -> PathBuf {
        self.host_dir(i).join("app")
    }

    /// `{ address = "USER@127.0.0.1:PORT", deploy_to = "/abs/path" }`.
    pub fn host_entry(&self, i: usize) -> String {
        format!(
            "{{ address = {}, deploy_to = {} }}",
            toml_str(&self.address(i)),
            toml_str(&self.deploy_to(i).to_string_lossy())
        )
    }

    /// `[ {…}, {…} ]`: every host's [`Self::host_entry`], for `hosts = …`.
    pub fn hosts_array(&self) -> String {
        self.hosts_array_of(0..self.len())
    }

    /// Like [`Self::hosts_array`] for the chosen hosts.
    pub fn hosts_array_of(&self, which: impl IntoIterator<Item = usize>) -> String {
        let entries: Vec<String> = which.into_iter().map(|i| self.host_entry(i)).collect();
        format!("[{}]", entries.join(", "))
    }

    /// `[ssh]\nidentity = "…"\nknown_hosts = "…"\n`.
    pub fn ssh_section(&self) -> String {
        self.ssh_section_with(&self.known_hosts())
    }

    /// Like [`Self::ssh_section`] with another known_hosts file.
    pub fn ssh_section_with(&self, known_hosts: &Path) -> String {
        format!(
            "[ssh]\nidentity = {}\nknown_hosts = {}\n",
            toml_str(&self.identity().to_string_lossy()),
            toml_str(&known_hosts.to_string_lossy())
        )
    }

    /// Whether host `i`'s sshd is running (started and not killed).
    pub fn is_running(&mut self, i: usize) -> bool {
        match self.hosts[i].child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// SIGKILL host `i`'s sshd and every session it serves: open connections
    /// drop at once and new ones are refused. No-op when already killed.
    pub fn kill(&mut self, i: usize) {
        self.hosts[i].kill();
    }

    /// Start host `i` again on the same port with the same host key (kills
    /// it first if it is running). Panics if it does not come up.
    pub fn restart(&mut self, i: usize) {
        let host = &mut self.hosts[i];
        host.kill();
        host.spawn(self.mask.as_ref());
        if let Err(e) = host.wait_ready() {
            let diagnostics = host.diagnostics();
            host.kill();
            panic!("restarting sshd host {i}: {e}\n{diagnostics}");
        }
    }

    /// Host `i`'s sshd log (LogLevel VERBOSE), for debugging a failed test.
    pub fn log(&self, i: usize) -> String {
        fs::read_to_string(self.hosts[i].log_file()).unwrap_or_default()
    }

    /// Every host's log, each headed by its index and port.
    pub fn logs(&self) -> String {
        (0..self.len())
            .map(|i| {
                format!(
                    "--- sshd host {i} (port {}) ---\n{}",
                    self.port(i),
                    self.log(i)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// An OpenSSH client command for host `i` (strict host key checking
    /// against the fleet's known_hosts, no user config, no agent, batch mode);
    /// append the remote command with `.arg(…)`.
    pub fn ssh_command(&self, i: usize) -> Command {
        self.ssh_command_with(i, &self.known_hosts())
    }

    /// Like [`Self::ssh_command`], checking host keys against `known_hosts`.
    pub fn ssh_command_with(&self, i: usize, known_hosts: &Path) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.arg("-F")
            .arg("/dev/null")
            .arg("-i")
            .arg(self.identity())
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
            .args([
                "-o",
                "GlobalKnownHostsFile=/dev/null",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "IdentityAgent=none",
                "-o",
                "BatchMode=yes",
                "-o",
                "ConnectTimeout=5",
                "-o",
                "LogLevel=ERROR",
                "-p",
            ])
            .arg(self.port(i).to_string())
            .arg(format!("{}@127.0.0.1", self.user))
            .stdin(Stdio::null());
        cmd
    }

    /// Run `command` on host `i` through the OpenSSH client.
    pub fn ssh(&self, i: usize, command: &str) -> (i32, String, String) {
        run(self.ssh_command(i).arg(command))
    }
}

impl Drop for SshdFleet {
    fn drop(&mut self) {
        for host in &mut self.hosts {
            host.kill();
        }
        // `dir` (the TempDir) is removed after this, as the last field.
    }
}

/// `shipdeck` as built for these tests, with `SHIPDECK_OPERATOR=alice` and
/// `RUST_BACKTRACE=1`. Set `.current_dir(…)` and pass `--config` as needed.
pub fn shipdeck() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shipdeck"));
    cmd.env("SHIPDECK_OPERATOR", "alice")
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null());
    cmd
}

/// [`shipdeck`] run in `dir`, with HOME and the XDG directories inside
/// `dir/.home`, so that no test sees another's (or the user's) local state.
pub fn shipdeck_in(dir: &Path) -> Command {
    let home = dir.join(".home");
    for sub in ["", ".config", ".local/share", ".local/state", ".cache"] {
        let _ = fs::create_dir_all(home.join(sub));
    }
    let mut cmd = shipdeck();
    cmd.current_dir(dir)
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("XDG_STATE_HOME", home.join(".local/state"))
        .env("XDG_CACHE_HOME", home.join(".cache"));
    cmd
}

/// The first `n` lines a running command (a `logs` follow) prints on
/// stdout, or fewer if `within` runs out first; the command is killed after.
pub fn first_lines(child: &mut Child, n: usize, within: Duration) -> Vec<String> {
    use std::io::BufRead;
    let stdout = child.stdout.take().expect("stdout piped");
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            lines.push(line);
            if lines.len() == n {
                break;
            }
        }
        lines
    });
    let deadline = Instant::now() + within;
    while !reader.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    reader.join().unwrap()
}

/// Run `cmd` with no stdin and [`RUN_TIMEOUT`]: (exit code, stdout, stderr).
/// A signal-killed process reports 128 + the signal number.
pub fn run(cmd: &mut Command) -> (i32, String, String) {
    run_timeout(cmd, RUN_TIMEOUT)
}

/// Like [`run`] with a chosen timeout; past it the process is killed and the
/// test fails showing what it printed.
pub fn run_timeout(cmd: &mut Command, timeout: Duration) -> (i32, String, String) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let stdout_buf = spawn_reader(child.stdout.take().expect("stdout"));
    let stderr_buf = spawn_reader(child.stderr.take().expect("stderr"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => panic!("waiting for {cmd:?}: {e}"),
        }
    };
    // Wait a little for the pipes to close, but not for ever: a process the
    // command left running in the background may hold them open.
    let drain_deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < drain_deadline
        && !(stdout_buf.0.is_finished() && stderr_buf.0.is_finished())
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    let text = |buf: &Arc<Mutex<Vec<u8>>>| {
        String::from_utf8_lossy(&buf.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    };
    let stdout = text(&stdout_buf.1);
    let stderr = text(&stderr_buf.1);
    let Some(status) = status else {
        panic!(
            "{cmd:?} still running after {timeout:?}; killed\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
        );
    };
    let code = status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1);
    (code, stdout, stderr)
}

/// Read `pipe` to its end on a thread, into a buffer readable at any time.
fn spawn_reader(
    mut pipe: impl Read + Send + 'static,
) -> (std::thread::JoinHandle<()>, Arc<Mutex<Vec<u8>>>) {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&buf);
    let handle = std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        loop {
            match pipe.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => sink
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend_from_slice(&chunk[..n]),
            }
        }
    });
    (handle, buf)
}

/// The target of the symlink at `path`, or `None` if it is not a symlink.
pub fn readlink(path: impl AsRef<Path>) -> Option<String> {
    fs::read_link(path)
        .ok()
        .map(|t| t.to_string_lossy().into_owned())
}
