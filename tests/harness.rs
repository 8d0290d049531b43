//! Self-test of the real-sshd harness in `tests/support`.

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use support::{SshdFleet, readlink, run};

#[test]
fn fleet_hosts_accept_the_key_and_die_and_come_back() {
    let Some(mut fleet) = SshdFleet::start(3) else {
        return;
    };
    for i in 0..3 {
        let (code, _, err) = fleet.ssh(i, "true");
        assert_eq!(code, 0, "ssh to host {i}: {err}\n{}", fleet.log(i));
        assert!(fleet.host_dir(i).is_dir());
        assert!(
            !fleet.deploy_to(i).exists(),
            "deploy_to must be left to shipdeck"
        );
    }
    // Each host is its own process on its own port.
    assert_ne!(fleet.port(0), fleet.port(1));
    assert_ne!(fleet.port(1), fleet.port(2));

    // An open session dies with its host.
    let mut open = fleet
        .ssh_command(1)
        .arg("echo up; exec sleep 60")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ssh");
    {
        use std::io::Read;
        let mut first = [0u8; 3];
        open.stdout
            .as_mut()
            .unwrap()
            .read_exact(&mut first)
            .expect("session is up");
        assert_eq!(&first, b"up\n");
    }

    fleet.kill(1);
    assert!(!fleet.is_running(1));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if open.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = open.kill();
            panic!("a session to a killed host stayed open\n{}", fleet.log(1));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let (code, _, _) = fleet.ssh(1, "true");
    assert_ne!(code, 0, "ssh to a killed host succeeded");
    for i in [0, 2] {
        let (code, _, err) = fleet.ssh(i, "true");
        assert_eq!(code, 0, "host {i} must survive host 1's death: {err}");
    }

    fleet.restart(1);
    let (code, _, err) = fleet.ssh(1, "true");
    assert_eq!(code, 0, "ssh after restart: {err}\n{}", fleet.log(1));
    assert!(
        fleet.log(1).contains("Accepted publickey"),
        "{}",
        fleet.log(1)
    );
}

#[test]
fn fleet_config_snippets_and_known_hosts() {
    let Some(fleet) = SshdFleet::start(2) else {
        return;
    };
    let user = fleet.user();
    let entry = fleet.host_entry(1);
    assert_eq!(
        entry,
        format!(
            "{{ address = \"{user}@127.0.0.1:{}\", deploy_to = \"{}\" }}",
            fleet.port(1),
            fleet.deploy_to(1).display()
        )
    );
    assert!(fleet.deploy_to(1).is_absolute());
    let section = fleet.ssh_section();
    assert!(section.starts_with("[ssh]\nidentity = \""), "{section}");
    assert!(section.contains(&format!(
        "known_hosts = \"{}\"",
        fleet.known_hosts().display()
    )));

    let all = std::fs::read_to_string(fleet.known_hosts()).unwrap();
    assert_eq!(all.lines().count(), 2);
    assert!(all.contains(&format!("[127.0.0.1]:{} ssh-ed25519 AAAA", fleet.port(0))));
    let without = std::fs::read_to_string(fleet.known_hosts_without(0)).unwrap();
    assert_eq!(without.lines().count(), 1);
    assert!(!without.contains(&format!("[127.0.0.1]:{} ", fleet.port(0))));
    assert!(without.contains(&format!("[127.0.0.1]:{} ", fleet.port(1))));

    let fp = fleet.fingerprint(0);
    assert!(fp.starts_with("SHA256:") && fp.len() > 40, "{fp}");
    // The fingerprint is the one the server really presents.
    let (code, out, err) = run(std::process::Command::new("ssh-keyscan")
        .args(["-t", "ed25519", "-p"])
        .arg(fleet.port(0).to_string())
        .arg("127.0.0.1"));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(fleet.host_public_key(0)), "{out}");

    // Strict checking against the file without host 0 refuses host 0.
    let (code, _, err) = run(fleet
        .ssh_command_with(0, &fleet.known_hosts_without(0))
        .arg("true"));
    assert_ne!(code, 0, "an unknown host key must be refused");
    assert!(err.contains("Host key verification failed"), "{err}");

    // readlink helper.
    let link = fleet.dir().join("current");
    std::os::unix::fs::symlink("releases/v1", &link).unwrap();
    assert_eq!(readlink(&link).as_deref(), Some("releases/v1"));
    assert_eq!(readlink(fleet.dir()), None);
}

#[test]
fn dropping_a_fleet_stops_its_sshds() {
    let Some(fleet) = SshdFleet::start(2) else {
        return;
    };
    let ports = [fleet.port(0), fleet.port(1)];
    let dir = fleet.dir().to_path_buf();
    drop(fleet);
    for port in ports {
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "port {port} still accepts after drop"
        );
    }
    assert!(!dir.exists(), "temp dir left behind");
}
