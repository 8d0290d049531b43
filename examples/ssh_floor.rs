//! The floor `benches/run` measures shipdeck against: a minimal ssh2 client
//! that, for each host, connects, checks the host key, authenticates with one
//! key file and runs one command, one thread per host (threads = N). It picks
//! the same fast algorithms shipdeck asks for, so the difference left is
//! shipdeck's own work, not libssh2's defaults.
//!
//! ```text
//! ssh_floor IDENTITY KNOWN_HOSTS USER COMMAND PORT:DIR...
//! ```
//!
//! `{dir}` in COMMAND is replaced by each host's DIR. Exit 1 if any host failed.

use std::net::TcpStream;
use std::path::Path;
use std::process::ExitCode;

use ssh2::{CheckResult, KnownHostFileKind, MethodType, Session};

struct Job {
    port: u16,
    dir: String,
}

fn run_one(
    identity: &Path,
    known_hosts: &Path,
    user: &str,
    command: &str,
    job: &Job,
) -> Result<(), String> {
    let tcp = TcpStream::connect(("127.0.0.1", job.port)).map_err(|e| format!("connect: {e}"))?;
    // libssh2 leaves Nagle on; with it every round trip waits for a delayed ACK.
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut session = Session::new().map_err(|e| e.to_string())?;
    for (method, prefs) in [
        (
            MethodType::Kex,
            "curve25519-sha256,curve25519-sha256@libssh.org",
        ),
        (MethodType::CryptCs, "aes128-gcm@openssh.com,aes128-ctr"),
        (MethodType::CryptSc, "aes128-gcm@openssh.com,aes128-ctr"),
        (MethodType::HostKey, "ssh-ed25519"),
    ] {
        session
            .method_pref(method, prefs)
            .map_err(|e| e.to_string())?;
    }
    session.set_tcp_stream(tcp);
    session.handshake().map_err(|e| format!("handshake: {e}"))?;
    let mut known = session.known_hosts().map_err(|e| e.to_string())?;
    known
        .read_file(known_hosts, KnownHostFileKind::OpenSSH)
        .map_err(|e| format!("known_hosts: {e}"))?;
    let (key, _) = session.host_key().ok_or("no host key")?;
    match known.check_port("127.0.0.1", job.port, key) {
        CheckResult::Match => {}
        other => return Err(format!("host key: {other:?}")),
    }
    session
        .userauth_pubkey_file(user, None, identity, None)
        .map_err(|e| format!("auth: {e}"))?;
    let mut channel = session.channel_session().map_err(|e| e.to_string())?;
    channel
        .exec(&command.replace("{dir}", &job.dir))
        .map_err(|e| format!("exec: {e}"))?;
    let mut out = String::new();
    std::io::Read::read_to_string(&mut channel, &mut out).map_err(|e| e.to_string())?;
    channel.wait_close().map_err(|e| e.to_string())?;
    match channel.exit_status().map_err(|e| e.to_string())? {
        0 => Ok(()),
        code => Err(format!("exit {code}: {out}")),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 5 {
        eprintln!("usage: ssh_floor IDENTITY KNOWN_HOSTS USER COMMAND PORT:DIR...");
        return ExitCode::from(2);
    }
    let jobs: Result<Vec<Job>, String> = args[4..]
        .iter()
        .map(|a| {
            let (port, dir) = a.split_once(':').ok_or(format!("not PORT:DIR: {a}"))?;
            let port = port.parse().map_err(|_| format!("bad port in {a}"))?;
            Ok(Job {
                port,
                dir: dir.to_owned(),
            })
        })
        .collect();
    let jobs = match jobs {
        Ok(j) => j,
        Err(e) => {
            eprintln!("ssh_floor: {e}");
            return ExitCode::from(2);
        }
    };
    let (identity, known_hosts) = (Path::new(&args[0]), Path::new(&args[1]));
    let (user, command) = (args[2].as_str(), args[3].as_str());
    let failed = std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .iter()
            .map(|job| s.spawn(move || run_one(identity, known_hosts, user, command, job)))
            .collect();
        let mut failed = 0;
        for (h, job) in handles.into_iter().zip(&jobs) {
            let why = match h.join() {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => e,
                Err(_) => "thread panicked".to_owned(),
            };
            eprintln!("ssh_floor: port {} {}: {why}", job.port, job.dir);
            failed += 1;
        }
        failed
    });
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
