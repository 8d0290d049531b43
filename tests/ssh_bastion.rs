//! Hosts reachable only through a bastion, as `ProxyJump` in
//! `~/.ssh/config` says: three network namespaces the test makes (the
//! operator's, the bastion's with a leg in each of the others, and the
//! targets', where two sshds listen), so the targets cannot be reached
//! but through the bastion. Needs root and iproute2; with CI=true a missing
//! one fails.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

const BASTION: &str = "10.77.1.2";
const OPERATOR: &str = "10.77.1.1";
const TARGETS: &str = "10.77.2.2";
const PORT: u16 = 2222;

/// The namespaces, their links, and the sshds in them; all gone on drop.
struct Net {
    names: [String; 3],
    sshds: Vec<Child>,
    dir: tempfile::TempDir,
}

fn ip(args: &[&str]) {
    let (code, _, err) = run(Command::new("ip").args(args));
    assert_eq!(code, 0, "ip {}: {err}", args.join(" "));
}

/// `None` to skip; panics instead when CI=true.
fn require_netns() -> Option<()> {
    require_sshd()?;
    let missing = if !is_root() {
        Some("root (for network namespaces)")
    } else if !Path::new("/usr/sbin/ip").exists() && !Path::new("/usr/bin/ip").exists() {
        Some("iproute2's ip")
    } else {
        None
    };
    match missing {
        None => Some(()),
        Some(what) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("the bastion test needs {what} when CI=true")
        }
        Some(what) => {
            eprintln!("skipping: needs {what} (with CI=true this fails)");
            None
        }
    }
}

impl Net {
    fn start() -> Option<Net> {
        require_netns()?;
        fs::create_dir_all("/run/sshd").unwrap();
        let id = std::process::id() % 100_000;
        let names = [
            format!("sdop{id}"),
            format!("sdbas{id}"),
            format!("sdtgt{id}"),
        ];
        let net = Net {
            names: names.clone(),
            sshds: Vec::new(),
            dir: tempfile::tempdir().unwrap(),
        };
        let [op, bas, tgt] = &names;
        for ns in &names {
            ip(&["netns", "add", ns]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        let legs = [
            (
                op,
                format!("va{id}"),
                OPERATOR,
                bas,
                format!("vb{id}"),
                BASTION,
            ),
            (
                bas,
                format!("vc{id}"),
                "10.77.2.1",
                tgt,
                format!("vd{id}"),
                TARGETS,
            ),
        ];
        for (ns_a, a, addr_a, ns_b, b, addr_b) in &legs {
            ip(&[
                "link", "add", a, "netns", ns_a, "type", "veth", "peer", "name", b, "netns", ns_b,
            ]);
            for (ns, dev, addr) in [(ns_a, a, addr_a), (ns_b, b, addr_b)] {
                ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev]);
                ip(&["-n", ns, "link", "set", dev, "up"]);
            }
        }
        Some(net)
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// An sshd on `addr:port` in namespace `ns`; returns its known_hosts line.
    fn sshd(&mut self, ns: usize, addr: &str, port: u16, authorized: &Path) -> String {
        let dir = self.dir().join(format!("sshd-{addr}-{port}"));
        fs::create_dir_all(&dir).unwrap();
        let key = dir.join("host_key");
        let (code, _, err) = run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key));
        assert_eq!(code, 0, "{err}");
        let config = dir.join("sshd_config");
        fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress {addr}\nHostKey {}\nPidFile {}\n\
                 AuthorizedKeysFile {}\nPermitRootLogin prohibit-password\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
                 StrictModes no\nAllowTcpForwarding yes\nUseDNS no\nLogLevel VERBOSE\n",
                key.display(),
                dir.join("pid").display(),
                authorized.display()
            ),
        )
        .unwrap();
        let log = dir.join("log");
        // `ip netns exec` gives sshd a mount namespace of its own, where an
        // empty file covers root's slow ~/.bashrc (see TESTING.md).
        let empty = dir.join("empty");
        fs::write(&empty, "").unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.names[ns], "sh", "-c"])
            .arg(r#"[ -f /root/.bashrc ] && mount --bind "$1" /root/.bashrc; shift; exec "$@""#)
            .arg("sh")
            .arg(&empty)
            .arg(SSHD)
            .arg("-D")
            .arg("-f")
            .arg(&config)
            .arg("-E")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sshd");
        self.sshds.push(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !fs::read_to_string(&log).is_ok_and(|l| l.contains("Server listening")) {
            assert!(
                Instant::now() < deadline,
                "sshd {addr}:{port} did not start: {}",
                fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let public = fs::read_to_string(key.with_extension("pub")).unwrap();
        let mut words = public.split_whitespace();
        let (kind, blob) = (words.next().unwrap(), words.next().unwrap());
        format!("[{addr}]:{port} {kind} {blob}\n")
    }

    /// A web server on 127.0.0.1:8080 of the targets' namespace, which only
    /// the targets themselves can reach; it logs each request.
    fn health_server(&mut self) -> PathBuf {
        let root = self.dir().join("www");
        fs::create_dir_all(&root).unwrap();
        fs::write(root.join("healthz"), "ok\n").unwrap();
        let log = self.dir().join("www.log");
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.names[2],
                "python3",
                "-m",
                "http.server",
            ])
            .args(["8080", "--bind", "127.0.0.1", "--directory"])
            .arg(&root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .expect("start python3 -m http.server");
        self.sshds.push(child);
        log
    }

    fn sshd_log(&self, addr: &str, port: u16) -> String {
        fs::read_to_string(self.dir().join(format!("sshd-{addr}-{port}/log"))).unwrap_or_default()
    }

    /// shipdeck in the operator's namespace.
    fn shipdeck(&self, project: &Path, args: &[&str]) -> Command {
        let inner = shipdeck_in(project);
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.names[0]])
            .arg(inner.get_program())
            .args(args)
            .current_dir(project)
            .env_remove("SSH_AUTH_SOCK");
        for (k, v) in inner.get_envs() {
            if let Some(v) = v {
                c.env(k, v);
            }
        }
        c
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for child in &mut self.sshds {
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in &self.names {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

struct Project {
    net: Net,
    root: PathBuf,
    health_log: PathBuf,
}

impl Project {
    fn new() -> Option<Project> {
        let mut net = Net::start()?;
        let root = net.dir().join("project");
        fs::create_dir_all(root.join("dist")).unwrap();
        let key = net.dir().join("id_ed25519");
        let (code, _, err) = run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key));
        assert_eq!(code, 0, "{err}");
        let authorized = key.with_extension("pub");
        let mut known = net.sshd(1, BASTION, PORT, &authorized);
        known += &net.sshd(2, TARGETS, PORT, &authorized);
        known += &net.sshd(2, TARGETS, PORT + 1, &authorized);
        let health_log = net.health_server();
        let known_hosts = net.dir().join("known_hosts");
        fs::write(&known_hosts, known).unwrap();
        let ssh = root.join(".home/.ssh");
        fs::create_dir_all(&ssh).unwrap();
        fs::write(
            ssh.join("config"),
            format!(
                "Host app1\n  HostName {TARGETS}\n\
                 Host app2\n  HostName {TARGETS}\n  Port {}\n\
                 Host app*\n  ProxyJump bastion\n  Port {PORT}\n\
                 Host bastion\n  HostName {BASTION}\n  Port {PORT}\n",
                PORT + 1
            ),
        )
        .unwrap();
        let deploy_to = |i: usize| toml_str(&net.dir().join(format!("app{i}")).to_string_lossy());
        fs::write(
            root.join("shipdeck.toml"),
            format!(
                "[app]\nname = \"hello\"\nartifact = \"dist\"\ndeploy_to = \"/unused\"\n\n\
                 [logs]\nfiles = [\"log/app.log\"]\n\n\
                 [health]\nhttp = \"http://127.0.0.1:8080/healthz\"\ninterval = \"100ms\"\nhealthy_after = 2\ngate = \"10s\"\n\n\
                 [environments.staging]\n\
                 hosts = [{{ address = \"app1\", deploy_to = {} }}, {{ address = \"app2\", deploy_to = {} }}]\n\n\
                 [environments.direct]\n\
                 hosts = [{{ address = \"app1\", deploy_to = {}, jump = \"none\" }}]\n\n\
                 [ssh]\nidentity = {}\nknown_hosts = {}\n",
                deploy_to(1),
                deploy_to(2),
                deploy_to(1),
                toml_str(&key.to_string_lossy()),
                toml_str(&known_hosts.to_string_lossy()),
            ),
        )
        .unwrap();
        Some(Project {
            net,
            root,
            health_log,
        })
    }

    fn run(&self, args: &[&str]) -> (i32, String, String) {
        run(&mut self.net.shipdeck(&self.root, args))
    }

    fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args);
        assert_eq!(
            code,
            0,
            "shipdeck {args:?}:\n{out}\n{err}\nbastion:\n{}",
            self.net.sshd_log(BASTION, PORT)
        );
        out
    }

    fn build(&self, id: &str) {
        fs::write(self.root.join("dist/version"), format!("{id}\n")).unwrap();
        self.ok(&["build", "--id", id]);
    }

    fn current(&self, i: usize) -> Option<String> {
        readlink(self.net.dir().join(format!("app{i}/current")))
    }

    fn bastion_logins(&self) -> usize {
        self.net
            .sshd_log(BASTION, PORT)
            .matches("Accepted publickey")
            .count()
    }
}

#[test]
fn deploy_logs_and_rollback_through_a_bastion() {
    let Some(p) = Project::new() else {
        return;
    };
    // The targets cannot be reached from the operator's side but through it.
    let (code, out, err) = p.run(&["check", "direct"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        out.contains("Network is unreachable") || out.contains("no answer"),
        "{out}"
    );

    // The bastion's host key is checked like any host's.
    let known_hosts = p.net.dir().join("known_hosts");
    let known = fs::read_to_string(&known_hosts).unwrap();
    let without: String = known
        .lines()
        .filter(|l| !l.starts_with(&format!("[{BASTION}]")))
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(&known_hosts, without).unwrap();
    let (code, out, err) = p.run(&["check", "staging"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        out.contains(&format!(
            "host key of bastion {}@{BASTION}:{PORT} is not in",
            current_user()
        )),
        "{out}"
    );
    fs::write(&known_hosts, known).unwrap();

    p.build("v1");
    p.build("v2");
    let before = p.bastion_logins();
    p.ok(&["deploy", "staging", "v1"]);
    assert_eq!(p.current(1).as_deref(), Some("releases/v1"));
    assert_eq!(p.current(2).as_deref(), Some("releases/v1"));
    assert_eq!(
        p.bastion_logins() - before,
        1,
        "both hosts share one bastion session"
    );
    // The health gate probed each host from the host itself, through the bastion.
    let probes = fs::read_to_string(&p.health_log).unwrap();
    assert!(
        probes.matches("GET /healthz").count() >= 4,
        "two passing probes per host: {probes}"
    );
    for port in [PORT, PORT + 1] {
        let log = p.net.sshd_log(TARGETS, port);
        assert!(
            log.contains("Accepted publickey") && log.contains(&format!("from {}", "10.77.2.1")),
            "the target saw the bastion connect: {log}"
        );
    }

    let out = p.ok(&["check", "staging"]);
    let me = current_user();
    assert!(
        out.contains(&format!(
            "app2: reached as {me}@{TARGETS}:{} via {me}@{BASTION}:{PORT} (",
            PORT + 1
        )),
        "{out}"
    );
    assert!(out.contains("ProxyJump from ~/.ssh/config line 7"), "{out}");

    p.ok(&["deploy", "staging", "v2"]);
    assert_eq!(p.current(1).as_deref(), Some("releases/v2"));
    p.ok(&["rollback", "staging"]);
    assert_eq!(p.current(1).as_deref(), Some("releases/v1"));
    assert_eq!(p.current(2).as_deref(), Some("releases/v1"));

    for i in [1, 2] {
        let log = p.net.dir().join(format!("app{i}/log"));
        fs::create_dir_all(&log).unwrap();
        fs::write(log.join("app.log"), format!("hello from app{i}\n")).unwrap();
    }
    let mut child = p
        .net
        .shipdeck(&p.root, &["logs", "staging", "--json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = first_lines(&mut child, 2, Duration::from_secs(20));
    for i in [1, 2] {
        assert!(
            lines
                .iter()
                .any(|l| l.contains(&format!("hello from app{i}"))),
            "{lines:?}"
        );
    }
}
