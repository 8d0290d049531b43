//! Hosts reached as an operator has them: an alias in `~/.ssh/config`
//! (under the `$HOME` shipdeck runs with), keys with passphrases through
//! the agent or `SHIPDECK_SSH_PASSPHRASE`, and `IdentitiesOnly` against an
//! agent holding more keys than sshd's MaxAuthTries lets one offer.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

/// A project whose one host is `web1`, an alias `~/.ssh/config` defines.
struct Project {
    fleet: SshdFleet,
    dir: tempfile::TempDir,
}

impl Project {
    fn new(ssh_section: &str) -> Option<Project> {
        let fleet = SshdFleet::start(1)?;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("dist")).unwrap();
        fs::write(root.join("dist/version"), "v1\n").unwrap();
        let config = format!(
            "[app]\nname = \"hello\"\nartifact = \"dist\"\ndeploy_to = \"/unused\"\n\n\
             [environments.staging]\nhosts = [{{ address = \"web1\", deploy_to = {} }}]\n\n\
             [ssh]\nknown_hosts = {}\n{ssh_section}\n",
            toml_str(&fleet.deploy_to(0).to_string_lossy()),
            toml_str(&fleet.known_hosts().to_string_lossy()),
        );
        fs::write(root.join("shipdeck.toml"), config).unwrap();
        Some(Project { fleet, dir })
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    /// `~/.ssh/config` of the HOME shipdeck runs with.
    fn write_ssh_config(&self, text: &str) {
        let ssh = self.root().join(".home/.ssh");
        fs::create_dir_all(&ssh).unwrap();
        fs::write(ssh.join("config"), text).unwrap();
    }

    /// The alias block, with `extra` lines in it.
    fn alias(&self, identity: &Path, extra: &str) -> String {
        format!(
            "# the fleet\nHost web1\n  HostName 127.0.0.1\n  User {}\n  Port {}\n  IdentityFile {}\n{extra}",
            self.fleet.user(),
            self.fleet.port(0),
            identity.display()
        )
    }

    /// shipdeck in its own session, so it has no terminal to ask on, and
    /// with no agent unless `agent` is given.
    fn cmd(&self, args: &[&str], agent: Option<&Agent>) -> Command {
        let inner = shipdeck_in(self.root());
        let mut c = Command::new("setsid");
        c.arg("-w").arg(inner.get_program()).args(args);
        for (k, v) in inner.get_envs() {
            if let Some(v) = v {
                c.env(k, v);
            }
        }
        c.current_dir(self.root())
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("SSH_ASKPASS")
            .env_remove("SHIPDECK_SSH_PASSPHRASE");
        if let Some(a) = agent {
            c.env("SSH_AUTH_SOCK", &a.socket);
        }
        c
    }

    fn ok(&self, cmd: &mut Command) -> String {
        let (code, out, err) = run(cmd);
        assert_eq!(code, 0, "{cmd:?}:\n{out}\n{err}\n{}", self.fleet.logs());
        out
    }

    fn current(&self) -> Option<String> {
        readlink(self.fleet.deploy_to(0).join("current"))
    }
}

/// An ssh-agent of the test's own, on its own socket.
struct Agent {
    socket: PathBuf,
    child: Child,
}

impl Agent {
    fn start(dir: &Path) -> Agent {
        let socket = dir.join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ssh-agent (install openssh-client)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            assert!(Instant::now() < deadline, "ssh-agent made no socket");
            std::thread::sleep(Duration::from_millis(10));
        }
        Agent { socket, child }
    }

    /// `ssh-add` the keys, answering an encrypted one's passphrase by askpass.
    fn add(&self, keys: &[PathBuf], passphrase: &str, dir: &Path) {
        let askpass = dir.join("askpass.sh");
        fs::write(&askpass, format!("#!/bin/sh\necho '{passphrase}'\n")).unwrap();
        Command::new("chmod")
            .arg("+x")
            .arg(&askpass)
            .status()
            .unwrap();
        let (code, _, err) = run(Command::new("setsid")
            .arg("-w")
            .arg("ssh-add")
            .args(keys)
            .env("SSH_AUTH_SOCK", &self.socket)
            .env("SSH_ASKPASS", &askpass)
            .env("SSH_ASKPASS_REQUIRE", "force"));
        assert_eq!(code, 0, "ssh-add: {err}");
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn keygen(path: &Path, passphrase: &str) -> PathBuf {
    let (code, _, err) = run(Command::new("ssh-keygen")
        .args([
            "-q", "-t", "ed25519", "-N", passphrase, "-C", "test-key", "-f",
        ])
        .arg(path));
    assert_eq!(code, 0, "ssh-keygen: {err}");
    path.to_owned()
}

/// Let `key` in as well as the fleet's own key.
fn authorize(fleet: &SshdFleet, key: &Path) {
    let mut text = fs::read_to_string(fleet.authorized_keys()).unwrap();
    text.push_str(&fs::read_to_string(key.with_extension("pub")).unwrap());
    fs::write(fleet.authorized_keys(), text).unwrap();
}

#[test]
fn an_ssh_config_alias_gives_the_address_port_user_and_key() {
    let Some(p) = Project::new("") else {
        return;
    };
    p.write_ssh_config(&p.alias(&p.fleet.identity(), ""));
    p.ok(&mut p.cmd(&["build", "--id", "v1"], None));
    p.ok(&mut p.cmd(&["deploy", "staging", "v1"], None));
    assert_eq!(p.current().as_deref(), Some("releases/v1"));

    let out = p.ok(&mut p.cmd(&["check", "staging"], None));
    let port = p.fleet.port(0);
    let user = p.fleet.user();
    let line = out
        .lines()
        .find(|l| l.starts_with("web1: reached as"))
        .unwrap_or_else(|| panic!("no reached line:\n{out}"));
    assert!(
        line.starts_with(&format!("web1: reached as {user}@127.0.0.1:{port} (")),
        "{line}"
    );
    for setting in ["HostName", "User", "Port", "IdentityFile"] {
        assert!(
            line.contains(&format!("{setting} from ~/.ssh/config line")),
            "{setting}: {line}"
        );
    }
    assert!(line.contains("User from ~/.ssh/config line 4"), "{line}");

    // shipdeck.toml's own settings win over the file.
    let config = fs::read_to_string(p.root().join("shipdeck.toml")).unwrap();
    fs::write(
        p.root().join("shipdeck.toml"),
        config.replace("[ssh]\n", "[ssh]\nport = 1\n"),
    )
    .unwrap();
    let (code, out, err) = run(&mut p.cmd(&["check", "staging"], None));
    assert_eq!(code, 1, "port 1 must not answer:\n{out}\n{err}");
    assert!(
        out.contains(&format!("reached as {user}@127.0.0.1:1 ("))
            && out.contains("Port from shipdeck.toml [ssh]"),
        "{out}"
    );
}

#[test]
fn a_proxy_command_is_refused_naming_its_line() {
    let Some(p) = Project::new("") else {
        return;
    };
    p.write_ssh_config(&p.alias(&p.fleet.identity(), "  ProxyCommand nc %h %p\n"));
    let (code, out, err) = run(&mut p.cmd(&["check", "staging"], None));
    assert_ne!(code, 0, "{out}");
    assert!(err.contains(".ssh/config:7:1:"), "{err}");
    assert!(
        err.contains("ProxyCommand is not supported") && err.contains("ProxyJump"),
        "{err}"
    );
}

#[test]
fn an_encrypted_key_through_the_agent_or_a_passphrase() {
    let Some(p) = Project::new("") else {
        return;
    };
    let keys = p.root().join("keys");
    fs::create_dir_all(&keys).unwrap();
    let locked = keygen(&keys.join("locked"), "s3cret words");
    authorize(&p.fleet, &locked);
    p.write_ssh_config(&p.alias(&locked, ""));
    p.ok(&mut p.cmd(&["build", "--id", "v1"], None));
    p.ok(&mut p.cmd(&["build", "--id", "v2"], None));

    // No agent, no passphrase, no terminal: it says what the key needs.
    let (code, out, err) = run(&mut p.cmd(&["deploy", "staging", "v1"], None));
    assert_ne!(code, 0, "{out}");
    assert!(
        err.contains(&format!(
            "{}: it is encrypted and needs a passphrase",
            locked.display()
        )),
        "{err}"
    );
    assert!(err.contains("SHIPDECK_SSH_PASSPHRASE"), "{err}");
    assert_eq!(p.current(), None);

    // A wrong passphrase says so.
    let (code, _, err) = run(p
        .cmd(&["deploy", "staging", "v1"], None)
        .env("SHIPDECK_SSH_PASSPHRASE", "wrong"));
    assert_ne!(code, 0);
    assert!(err.contains("wrong passphrase"), "{err}");

    // The right one, for CI.
    p.ok(p
        .cmd(&["deploy", "staging", "v1"], None)
        .env("SHIPDECK_SSH_PASSPHRASE", "s3cret words"));
    assert_eq!(p.current().as_deref(), Some("releases/v1"));

    // An askpass program, as OpenSSH's SSH_ASKPASS.
    let askpass = p.root().join("askpass.sh");
    fs::write(&askpass, "#!/bin/sh\necho 's3cret words'\n").unwrap();
    Command::new("chmod")
        .arg("+x")
        .arg(&askpass)
        .status()
        .unwrap();
    p.ok(p
        .cmd(&["deploy", "staging", "v2"], None)
        .env("SSH_ASKPASS", &askpass));
    assert_eq!(p.current().as_deref(), Some("releases/v2"));
}

#[test]
fn the_agent_holding_an_encrypted_key_needs_no_passphrase() {
    let Some(p) = Project::new("") else {
        return;
    };
    let keys = p.root().join("keys");
    fs::create_dir_all(&keys).unwrap();
    let locked = keygen(&keys.join("locked"), "s3cret");
    authorize(&p.fleet, &locked);
    p.write_ssh_config(&p.alias(&locked, ""));
    let agent = Agent::start(p.root());
    agent.add(std::slice::from_ref(&locked), "s3cret", p.root());
    p.ok(&mut p.cmd(&["build", "--id", "v1"], None));
    // Without its .pub, the key is still found in the agent by its public half.
    fs::remove_file(locked.with_extension("pub")).unwrap();
    p.ok(&mut p.cmd(&["deploy", "staging", "v1"], Some(&agent)));
    assert_eq!(p.current().as_deref(), Some("releases/v1"));
}

#[test]
fn identities_only_gets_past_an_agent_full_of_other_keys() {
    let Some(p) = Project::new("") else {
        return;
    };
    let keys = p.root().join("keys");
    fs::create_dir_all(&keys).unwrap();
    let others: Vec<PathBuf> = (0..8)
        .map(|i| keygen(&keys.join(format!("other-{i}")), ""))
        .collect();
    let agent = Agent::start(p.root());
    agent.add(&others, "", p.root());
    p.ok(&mut p.cmd(&["build", "--id", "v1"], None));

    // The agent's eight keys go first and sshd hangs up (MaxAuthTries 6).
    p.write_ssh_config(&p.alias(&p.fleet.identity(), ""));
    let (code, out, err) = run(&mut p.cmd(&["deploy", "staging", "v1"], Some(&agent)));
    assert_ne!(code, 0, "{out}");
    assert!(
        err.contains("MaxAuthTries") && err.contains("IdentitiesOnly"),
        "{err}"
    );
    assert!(
        err.contains("agent key SHA256:"),
        "names the keys it tried: {err}"
    );
    assert_eq!(p.current(), None);
    assert!(
        p.fleet
            .log(0)
            .contains("maximum authentication attempts exceeded"),
        "{}",
        p.fleet.log(0)
    );

    // IdentitiesOnly offers the configured key alone.
    p.write_ssh_config(&p.alias(&p.fleet.identity(), "  IdentitiesOnly yes\n"));
    p.ok(&mut p.cmd(&["deploy", "staging", "v1"], Some(&agent)));
    assert_eq!(p.current().as_deref(), Some("releases/v1"));

    // With the configured key in the agent too, its agent copy goes first.
    agent.add(&[p.fleet.identity()], "", p.root());
    p.write_ssh_config(&p.alias(&p.fleet.identity(), ""));
    p.ok(&mut p.cmd(&["check", "staging"], Some(&agent)));
}

/// tmux on a socket of its own, killed on drop.
struct Tmux(String);

impl Tmux {
    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.0]);
        c
    }

    fn screen(&self) -> String {
        let out = self.cmd().args(["capture-pane", "-p", "-t", "t"]).output();
        String::from_utf8_lossy(&out.expect("tmux capture-pane").stdout).into_owned()
    }

    fn wait_for(&self, what: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let screen = self.screen();
            if screen.contains(what) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "no {what:?} on screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").status();
    }
}

#[test]
fn a_passphrase_is_asked_once_on_the_terminal_and_never_echoed() {
    if Command::new("tmux").arg("-V").output().is_err() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "tmux is required when CI=true"
        );
        return;
    }
    let Some(fleet) = SshdFleet::start(2) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::create_dir_all(root.join("dist")).unwrap();
    fs::write(root.join("dist/version"), "v1\n").unwrap();
    let locked = keygen(&root.join("locked"), "typed at the prompt");
    authorize(&fleet, &locked);
    let entry = |i: usize| {
        format!(
            "{{ address = \"web{i}\", deploy_to = {} }}",
            toml_str(&fleet.deploy_to(i).to_string_lossy())
        )
    };
    fs::write(
        root.join("shipdeck.toml"),
        format!(
            "[app]\nname = \"hello\"\nartifact = \"dist\"\ndeploy_to = \"/unused\"\n\n\
             [environments.staging]\nhosts = [{}, {}]\n\n[ssh]\nknown_hosts = {}\n",
            entry(0),
            entry(1),
            toml_str(&fleet.known_hosts().to_string_lossy())
        ),
    )
    .unwrap();
    let home = root.join(".home");
    fs::create_dir_all(home.join(".ssh")).unwrap();
    fs::write(
        home.join(".ssh/config"),
        format!(
            "Host web0\n  Port {}\nHost web1\n  Port {}\nHost web*\n  HostName 127.0.0.1\n  User {}\n  IdentityFile {}\n",
            fleet.port(0),
            fleet.port(1),
            fleet.user(),
            locked.display()
        ),
    )
    .unwrap();
    let (code, _, err) = run(shipdeck_in(root).args(["build", "--id", "v1"]));
    assert_eq!(code, 0, "{err}");
    let script = root.join("deploy.sh");
    fs::write(
        &script,
        format!(
            "#!/bin/sh\ncd {root}\nunset SSH_AUTH_SOCK SSH_ASKPASS SHIPDECK_SSH_PASSPHRASE\n\
             HOME={home} SHIPDECK_OPERATOR=alice {bin} deploy staging v1\necho EXIT=$?\nsleep 600\n",
            root = root.display(),
            home = home.display(),
            bin = env!("CARGO_BIN_EXE_shipdeck"),
        ),
    )
    .unwrap();
    Command::new("chmod")
        .arg("+x")
        .arg(&script)
        .status()
        .unwrap();
    let tmux = Tmux(format!("shipdeck-pass-{}", std::process::id()));
    let started = tmux
        .cmd()
        .args(["new-session", "-d", "-s", "t", "-x", "160", "-y", "40"])
        .arg(&script)
        .status()
        .unwrap();
    assert!(started.success());
    tmux.wait_for("Enter passphrase for key");
    let typed = tmux
        .cmd()
        .args(["send-keys", "-t", "t", "typed at the prompt", "Enter"])
        .status()
        .unwrap();
    assert!(typed.success());
    let screen = tmux.wait_for("EXIT=");
    assert!(screen.contains("EXIT=0"), "{screen}");
    assert_eq!(
        screen.matches("Enter passphrase for key").count(),
        1,
        "two hosts behind one key ask once:\n{screen}"
    );
    assert!(
        !screen.contains("typed at"),
        "the passphrase was echoed:\n{screen}"
    );
    for i in 0..2 {
        assert_eq!(
            readlink(fleet.deploy_to(i).join("current")).as_deref(),
            Some("releases/v1")
        );
    }
}
