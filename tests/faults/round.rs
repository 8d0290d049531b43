//! One round: an operation, one fault at a moment drawn from the seed, the
//! fault healed, then the recovery the README gives.

use std::fmt;
use std::fs::{self, File};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::rng::Rng;
use crate::suite::*;

/// Past this an operation counts as hung: TERM, then KILL.
const OP_TIMEOUT: Duration = Duration::from_secs(90);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Deploy(&'static str, &'static str),
    Promote(&'static str),
    Rollback(&'static str),
}

impl Op {
    /// `staging` is the release staging runs: a promotion takes it three
    /// times in four (else it is refused by the gate, exit 4), and a
    /// staging deploy takes another one.
    pub fn pick(rng: &mut Rng, staging: Option<&str>) -> Op {
        let any = *rng.pick(&RELEASES);
        let others: Vec<&'static str> = RELEASES
            .into_iter()
            .filter(|r| Some(*r) != staging)
            .collect();
        let other = *rng.pick(&others);
        let passed = match RELEASES.into_iter().find(|r| Some(*r) == staging) {
            Some(r) if rng.chance(3, 4) => r,
            _ => any,
        };
        match rng.below(10) {
            0..=3 => Op::Deploy("staging", other),
            4 => Op::Deploy("production", passed),
            5..=7 => Op::Promote(passed),
            8 => Op::Rollback("production"),
            _ => Op::Rollback("staging"),
        }
    }

    /// About how long it runs here without a fault: a fault's moment is
    /// drawn below it.
    pub fn expected_ms(&self, strategy: Strategy) -> u64 {
        match (self, strategy) {
            (Op::Rollback(_), _) => 150,
            (Op::Deploy("staging", _), _) => 350,
            (_, Strategy::AllAtOnce) => 450,
            (_, Strategy::Rolling) => 900,
            (_, Strategy::Canary) => 1800,
        }
    }

    pub fn args(&self) -> Vec<String> {
        let v: Vec<&str> = match self {
            Op::Deploy(env, r) => vec!["deploy", env, r],
            Op::Promote(r) => vec!["promote", r, "--to", "production"],
            Op::Rollback(env) => vec!["rollback", env],
        };
        v.into_iter().map(str::to_owned).collect()
    }

    pub fn env(&self) -> &'static str {
        match self {
            Op::Deploy(env, _) | Op::Rollback(env) => env,
            Op::Promote(_) => "production",
        }
    }

    /// The release it ships, for a deploy or promote.
    pub fn release(&self) -> Option<&'static str> {
        match self {
            Op::Deploy(_, r) | Op::Promote(r) => Some(r),
            Op::Rollback(_) => None,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "shipdeck {}", self.args().join(" "))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// SIGKILL the operator.
    Kill,
    /// SIGTERM the operator; `twice`: a second one 150 ms later.
    Term { twice: bool },
    /// Host's sshd killed, started again `down_ms` later.
    Sshd { host: usize, down_ms: u64 },
    /// `restart` fails on host for the release named (or `*`).
    Restart { host: usize, release: String },
    /// `health` fails on host for the release named (or `*`).
    Health { host: usize, release: String },
    /// Host's tmpfs filled to the last byte.
    DiskFull { host: usize },
    /// A second operator (bob) starts this at the same time.
    TwoOperators(Op),
}

impl Fault {
    pub fn pick(
        rng: &mut Rng,
        op: &Op,
        staging: Option<&str>,
        disk: bool,
        skipped_disk: &mut u64,
    ) -> Fault {
        loop {
            let host = *rng.pick(hosts_of(op.env()));
            let marker = match op.release() {
                Some(r) if rng.chance(3, 4) => r.to_owned(),
                _ => "*".to_owned(),
            };
            let fault = match rng.below(7) {
                0 => Fault::Kill,
                1 => Fault::Term {
                    twice: rng.chance(1, 3),
                },
                2 => Fault::Sshd {
                    host,
                    down_ms: 200 + rng.below(2500),
                },
                3 => Fault::Restart {
                    host,
                    release: marker,
                },
                4 => Fault::Health {
                    host,
                    release: marker,
                },
                5 => Fault::DiskFull { host },
                _ => Fault::TwoOperators(Op::pick(rng, staging)),
            };
            if matches!(fault, Fault::DiskFull { .. }) && !disk {
                *skipped_disk += 1;
                continue;
            }
            return fault;
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Kill => write!(f, "operator SIGKILL"),
            Fault::Term { twice: false } => write!(f, "operator SIGTERM"),
            Fault::Term { twice: true } => write!(f, "operator SIGTERM twice"),
            Fault::Sshd { host, down_ms } => {
                write!(f, "sshd of host {host} killed, back after {down_ms} ms")
            }
            Fault::Restart { host, release } => {
                write!(f, "restart of {release} fails on host {host}")
            }
            Fault::Health { host, release } => {
                write!(f, "health of {release} fails on host {host}")
            }
            Fault::DiskFull { host } => write!(f, "disk full on host {host}"),
            Fault::TwoOperators(op) => write!(f, "a second operator (bob) runs `{op}` at once"),
        }
    }
}

/// A command the round ran, and what it said.
#[derive(Debug, Clone)]
pub struct Ran {
    pub label: String,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// Signals the round sent it.
    pub signals: Vec<&'static str>,
}

impl Ran {
    pub fn describe(&self) -> String {
        let signals = if self.signals.is_empty() {
            String::new()
        } else {
            format!(" (sent {})", self.signals.join(", "))
        };
        format!(
            "    `{}` -> exit {}{signals}\n{}",
            self.label,
            self.code,
            tail(&self.stderr, 12)
        )
    }
}

struct Proc {
    label: String,
    child: Child,
    out: PathBuf,
    err: PathBuf,
    signals: Vec<&'static str>,
    code: Option<i32>,
}

impl Proc {
    fn spawn(suite: &Suite, args: &[String], operator: &str, name: &str) -> Proc {
        let dir = suite.rounds_dir();
        let out = dir.join(format!("{name}.out"));
        let err = dir.join(format!("{name}.err"));
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let child = suite
            .cmd(&argv)
            .env("SHIPDECK_OPERATOR", operator)
            .stdin(Stdio::null())
            .stdout(File::create(&out).unwrap())
            .stderr(File::create(&err).unwrap())
            .spawn()
            .expect("spawn shipdeck");
        let who = if operator == "alice" {
            String::new()
        } else {
            format!("{operator}: ")
        };
        Proc {
            label: format!("{who}shipdeck {}", args.join(" ")),
            child,
            out,
            err,
            signals: Vec::new(),
            code: None,
        }
    }

    fn poll(&mut self) -> bool {
        if self.code.is_none()
            && let Ok(Some(status)) = self.child.try_wait()
        {
            use std::os::unix::process::ExitStatusExt;
            self.code = Some(
                status
                    .code()
                    .or_else(|| status.signal().map(|s| 128 + s))
                    .unwrap_or(-1),
            );
        }
        self.code.is_some()
    }

    fn signal(&mut self, sig: &'static str) {
        if self.poll() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-s", sig, &self.child.id().to_string()])
            .status();
        self.signals.push(sig);
    }

    fn wait(mut self) -> Ran {
        while !self.poll() {
            std::thread::sleep(Duration::from_millis(5));
        }
        Ran {
            label: self.label,
            code: self.code.unwrap_or(-1),
            stdout: fs::read_to_string(&self.out).unwrap_or_default(),
            stderr: fs::read_to_string(&self.err).unwrap_or_default(),
            signals: self.signals,
        }
    }
}

/// What the operation (and a second operator's) did, before recovery.
pub struct Outcome {
    pub ops: Vec<(Op, Ran)>,
    /// Whether the fault happened before the operation ended.
    pub fired: bool,
    /// An operation that outlived [`OP_TIMEOUT`].
    pub hung: Vec<String>,
    /// From the start until every process had ended.
    pub took: Duration,
}

/// Run `op` with `fault` striking `delay_ms` after it starts; heal the fault
/// once every process has ended.
pub fn strike(suite: &mut Suite, tag: &str, op: &Op, fault: &Fault, delay_ms: u64) -> Outcome {
    let mut procs = vec![(op.clone(), Proc::spawn(suite, &op.args(), "alice", tag))];
    if let Fault::TwoOperators(other) = fault {
        let p = Proc::spawn(suite, &other.args(), "bob", &format!("{tag}-bob"));
        procs.push((other.clone(), p));
    }
    let start = Instant::now();
    let delay = Duration::from_millis(delay_ms);
    let mut fired = matches!(fault, Fault::TwoOperators(_));
    let mut fired_at = None;
    let mut second_term = false;
    let mut sshd_down = false;
    let mut hung = Vec::new();
    loop {
        let mut all_done = true;
        for (_, p) in &mut procs {
            all_done &= p.poll();
        }
        if all_done {
            break;
        }
        let now = start.elapsed();
        if !fired && now >= delay {
            fired = true;
            fired_at = Some(now);
            let p = &mut procs[0].1;
            match fault {
                Fault::Kill => p.signal("KILL"),
                Fault::Term { .. } => p.signal("TERM"),
                Fault::Sshd { host, .. } => {
                    suite.fleet.kill(*host);
                    sshd_down = true;
                }
                Fault::Restart { host, release } => {
                    fs::write(suite.deploy_to(*host).join("fail-restart"), release).unwrap();
                }
                Fault::Health { host, release } => {
                    fs::write(suite.deploy_to(*host).join("fail-health"), release).unwrap();
                }
                Fault::DiskFull { host } => suite.fill_disk(*host),
                Fault::TwoOperators(_) => {}
            }
        }
        if let (Some(at), Fault::Term { twice: true }) = (fired_at, fault)
            && !second_term
            && now >= at + Duration::from_millis(150)
        {
            second_term = true;
            procs[0].1.signal("TERM");
        }
        if let (Some(at), Fault::Sshd { host, down_ms }) = (fired_at, fault)
            && sshd_down
            && now >= at + Duration::from_millis(*down_ms)
        {
            suite.fleet.restart(*host);
            sshd_down = false;
        }
        if now >= OP_TIMEOUT {
            for (_, p) in &mut procs {
                if !p.poll() {
                    hung.push(format!("`{}` still running after {OP_TIMEOUT:?}", p.label));
                    p.signal("TERM");
                }
            }
            std::thread::sleep(Duration::from_secs(5));
            for (_, p) in &mut procs {
                p.signal("KILL");
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let took = start.elapsed();
    heal(suite, fault, sshd_down);
    Outcome {
        took,
        ops: procs.into_iter().map(|(op, p)| (op, p.wait())).collect(),
        fired,
        hung,
    }
}

/// Undo the fault: sshd back, markers cleared, the disk freed.
fn heal(suite: &mut Suite, fault: &Fault, sshd_down: bool) {
    match fault {
        Fault::Sshd { host, .. } if sshd_down => suite.fleet.restart(*host),
        Fault::Restart { host, .. } => {
            let _ = fs::remove_file(suite.deploy_to(*host).join("fail-restart"));
        }
        Fault::Health { host, .. } => {
            let _ = fs::remove_file(suite.deploy_to(*host).join("fail-health"));
        }
        Fault::DiskFull { host } => suite.free_disk(*host),
        _ => {}
    }
}

/// Run a shipdeck command to its end.
pub fn run_cmd(suite: &Suite, args: &[&str]) -> Ran {
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    let mut p = Proc::spawn(suite, &args, "alice", "recovery");
    let start = Instant::now();
    while !p.poll() {
        if start.elapsed() >= OP_TIMEOUT {
            p.signal("TERM");
            std::thread::sleep(Duration::from_secs(5));
            p.signal("KILL");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    p.wait()
}

/// What `status ENV --json` says of one host.
#[derive(Debug, Clone, Default)]
pub struct HostStatus {
    pub host: String,
    pub lock: Option<String>,
    /// `(liveness, kind, release)` of the change its journal names.
    pub change: Option<(String, String, String)>,
    /// The status marks the host as behind the rest of its environment.
    pub behind: bool,
}

/// `status ENV --json`, read; `None` when its output is not the object with its `hosts`.
pub fn status(suite: &Suite, env: &str, log: &mut Vec<Ran>) -> Option<Vec<HostStatus>> {
    let ran = run_cmd(suite, &["status", env, "--json"]);
    let parsed: Option<Vec<serde_json::Value>> =
        serde_json::from_str::<serde_json::Value>(&ran.stdout)
            .ok()
            .and_then(|v| serde_json::from_value(v["hosts"].clone()).ok());
    log.push(ran);
    let hosts = parsed?;
    Some(
        hosts
            .iter()
            .map(|h| {
                let s = |v: &serde_json::Value| v.as_str().map(str::to_owned);
                HostStatus {
                    host: s(&h["host"]).unwrap_or_default(),
                    lock: s(&h["lock"]),
                    change: h.get("change").filter(|c| c.is_object()).map(|c| {
                        (
                            s(&c["liveness"]).unwrap_or_default(),
                            s(&c["kind"]).unwrap_or_default(),
                            s(&c["release"]).unwrap_or_default(),
                        )
                    }),
                    behind: match h.get("behind") {
                        Some(serde_json::Value::Bool(b)) => *b,
                        Some(serde_json::Value::Null) | None => false,
                        Some(_) => true,
                    },
                }
            })
            .collect(),
    )
}

/// What the recovery did, for the checks.
#[derive(Default)]
pub struct Recovery {
    pub log: Vec<Ran>,
    /// `(env, release)` of a resume that exited 0.
    pub resumed: Vec<(&'static str, String)>,
    /// Locks without a change, broken with `unlock --force`.
    pub unlocked: u64,
    /// Problems the recovery itself met (a status that did not parse, a
    /// change still "running" with no operator alive).
    pub problems: Vec<String>,
}

/// The README's recovery, for each environment: `status`; an interrupted
/// change is resumed, and rolled back if the resume fails; a lock that
/// status calls interrupted before it switched anything is released by
/// `rollback`; any other lock left without a change (its holder is dead:
/// every process of the round has ended) is broken with `unlock --force
/// --reason`, and counted: the README's recovery should never need it.
pub fn recover(suite: &Suite) -> Recovery {
    let mut r = Recovery::default();
    for env in ENVS {
        let Some(mut hosts) = status(suite, env, &mut r.log) else {
            r.problems.push(format!(
                "`shipdeck status {env} --json` did not print its array"
            ));
            continue;
        };
        let liveness = |hs: &[HostStatus], what: &str| {
            hs.iter()
                .filter_map(|h| h.change.clone())
                .find(|c| c.0 == what)
        };
        if liveness(&hosts, "running").is_some() {
            // The journal's pid is dead; give the status a moment, once.
            std::thread::sleep(Duration::from_millis(500));
            hosts = status(suite, env, &mut r.log).unwrap_or_default();
            if let Some(c) = liveness(&hosts, "running") {
                r.problems.push(format!(
                    "{env}: status says {} {} is running, but no operator process is alive",
                    c.1, c.2
                ));
            }
        }
        if let Some((_, _, release)) = liveness(&hosts, "interrupted") {
            let resume = run_cmd(suite, &["resume", env]);
            let code = resume.code;
            r.log.push(resume);
            if code == 0 {
                r.resumed.push((env, release));
            } else {
                let rollback = run_cmd(suite, &["rollback", env]);
                r.log.push(rollback);
            }
            hosts = status(suite, env, &mut r.log).unwrap_or_default();
        }
        let changes = hosts.iter().any(|h| h.change.is_some());
        let switched_nothing = |hs: &[HostStatus]| {
            hs.iter().any(|h| {
                h.lock
                    .as_deref()
                    .is_some_and(|l| l.contains("INTERRUPTED before it switched anything"))
            })
        };
        if !changes && switched_nothing(&hosts) {
            let rollback = run_cmd(suite, &["rollback", env]);
            r.log.push(rollback);
            hosts = status(suite, env, &mut r.log).unwrap_or_default();
        }
        if !changes && hosts.iter().any(|h| h.lock.is_some()) {
            let unlock = run_cmd(
                suite,
                &[
                    "unlock",
                    env,
                    "--force",
                    "--yes",
                    "--reason",
                    "faults: its holder is dead",
                ],
            );
            r.unlocked += 1;
            r.log.push(unlock);
        }
    }
    r
}

/// The hosts `status ENV` (text) marks as behind, by index.
pub fn behind_hosts(suite: &Suite, env: &str, log: &mut Vec<Ran>) -> Vec<usize> {
    let json = status(suite, env, log).unwrap_or_default();
    let text = run_cmd(suite, &["status", env]);
    let mut out: Vec<usize> = Vec::new();
    for &i in hosts_of(env) {
        let address = suite.fleet.address(i);
        let in_json = json
            .iter()
            .any(|h| h.behind && (h.host == address || address.ends_with(&h.host)));
        let in_text = text
            .stdout
            .lines()
            .any(|l| l.contains(&address) && l.contains("behind"));
        if in_json || in_text {
            out.push(i);
        }
    }
    log.push(text);
    out
}
