//! The invariants after every round, read off the hosts' filesystems, and
//! the tally.

use std::collections::{BTreeMap, BTreeSet};

use crate::round::*;
use crate::suite::*;

/// Actions whose successful record moved `current` (model::Action::switches).
const SWITCHES: [&str; 5] = ["deploy", "promote", "rollback", "revert", "reconcile"];

/// Exit codes the README gives a change: done, failed and put back, usage,
/// locked, gate.
const DOCUMENTED: [i32; 5] = [0, 1, 2, 3, 4];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// A host whose `current` is missing or incomplete, or an environment
    /// whose hosts run different releases with none marked behind.
    HalfSwitched,
    /// A history file that shrank, or a line of it that does not parse.
    HistoryLost,
    Other,
}

#[derive(Debug, Clone)]
pub struct Violation {
    pub kind: Kind,
    /// How many hosts (half-switched) or lines (history) it counts.
    pub count: u64,
    pub what: String,
}

impl Violation {
    fn other(what: String) -> Violation {
        Violation {
            kind: Kind::Other,
            count: 1,
            what,
        }
    }
}

/// What the hosts' filesystems held at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub currents: Vec<Option<String>>,
    pub history_lines: Vec<usize>,
    pub locks: Vec<bool>,
    pub journals: Vec<bool>,
}

impl Snapshot {
    pub fn take(suite: &Suite) -> Snapshot {
        Snapshot {
            currents: HOSTS.iter().map(|&i| suite.current(i)).collect(),
            history_lines: HOSTS
                .iter()
                .map(|&i| count_lines(&suite.history_text(i)))
                .collect(),
            locks: HOSTS.iter().map(|&i| suite.has_lock(i)).collect(),
            journals: HOSTS.iter().map(|&i| suite.has_journal(i)).collect(),
        }
    }

    fn env_untouched(&self, other: &Snapshot, env: &str) -> bool {
        hosts_of(env).iter().all(|&i| {
            self.currents[i] == other.currents[i]
                && self.history_lines[i] == other.history_lines[i]
                && self.locks[i] == other.locks[i]
                && self.journals[i] == other.journals[i]
        })
    }
}

/// Lines of a history file, a last line without its newline included.
fn count_lines(text: &str) -> usize {
    text.lines().count()
}

/// What the checks carry from round to round.
#[derive(Default)]
pub struct Memory {
    /// History lines per host after the last round.
    pub lines: Vec<usize>,
    /// Lines already reported as not parsing, per host (reported once).
    pub bad_lines: Vec<BTreeSet<usize>>,
}

impl Memory {
    pub fn new(suite: &Suite) -> Memory {
        let mut m = Memory {
            lines: vec![0; HOSTS.len()],
            bad_lines: vec![BTreeSet::new(); HOSTS.len()],
        };
        m.remember(suite);
        m
    }

    pub fn remember(&mut self, suite: &Suite) {
        for i in HOSTS {
            self.lines[i] = count_lines(&suite.history_text(i));
        }
    }
}

/// Checks right after the operation, before any recovery: exit codes, a
/// refused operation changed nothing, a finished deploy runs everywhere, a
/// failed one put its hosts back.
pub fn after_op(out: &Outcome, before: &Snapshot, after: &Snapshot) -> Vec<Violation> {
    let mut v = Vec::new();
    for h in &out.hung {
        v.push(Violation::other(format!("hung: {h}")));
    }
    for (i, (op, ran)) in out.ops.iter().enumerate() {
        let kill = ran.signals.contains(&"KILL");
        let terms = ran.signals.iter().filter(|s| **s == "TERM").count();
        let allowed = DOCUMENTED.contains(&ran.code)
            || (kill && ran.code == 137)
            || (terms >= 2 && ran.code == 143)
            || (terms == 1 && ran.code == 143 && before.env_untouched(after, op.env()));
        if !allowed {
            let why = if terms == 1 && ran.code == 143 {
                " after a single SIGTERM (the change should have been cancelled and put back, exit 1), and it left the hosts changed"
            } else {
                ""
            };
            v.push(Violation::other(format!(
                "`{}` exited {}{why}: not an exit code the README documents",
                ran.label, ran.code
            )));
        }
        // Another process on the same environment may have changed it.
        let alone =
            out.ops.iter().enumerate().all(|(j, (other, r))| {
                j == i || other.env() != op.env() || matches!(r.code, 3 | 4)
            });
        if !alone || !ran.signals.is_empty() && ran.code != 0 && ran.code != 1 {
            continue;
        }
        let hosts = hosts_of(op.env());
        if matches!(ran.code, 3 | 4) && !before.env_untouched(after, op.env()) {
            v.push(Violation::other(format!(
                "`{}` was refused (exit {}) but {} changed: before {:?}, after {:?}",
                ran.label,
                ran.code,
                op.env(),
                pick(&before.currents, hosts),
                pick(&after.currents, hosts)
            )));
        }
        if let Some(release) = op.release()
            && ran.code == 0
        {
            let target = format!("releases/{release}");
            let off: Vec<String> = hosts
                .iter()
                .filter(|&&h| after.currents[h].as_deref() != Some(&target))
                .map(|&h| format!("host {h}: {:?}", after.currents[h]))
                .collect();
            if !off.is_empty() {
                v.push(Violation::other(format!(
                    "`{}` exited 0 but not every {} host runs {release}: {}",
                    ran.label,
                    op.env(),
                    off.join(", ")
                )));
            }
        }
        if op.release().is_none() && ran.code == 0 {
            let mut on: Vec<&Option<String>> = hosts.iter().map(|&h| &after.currents[h]).collect();
            on.dedup();
            if on.len() > 1 {
                v.push(Violation::other(format!(
                    "`{}` exited 0 but left {} on different releases: {:?}",
                    ran.label,
                    op.env(),
                    pick(&after.currents, hosts)
                )));
            }
        }
        // Exit 1: "the change failed (switched hosts were put back)". A
        // rollback is never put back into the release it leaves: a host it
        // switched stays on the target, and history says so (checked after
        // recovery).
        if ran.code == 1
            && op.release().is_some()
            && !ran.stdout.contains("COULD NOT PUT BACK")
            && !ran.stderr.contains("COULD NOT PUT BACK")
        {
            let moved: Vec<String> = hosts
                .iter()
                .filter(|&&h| after.currents[h] != before.currents[h])
                .map(|&h| {
                    format!(
                        "host {h}: {:?} -> {:?}",
                        before.currents[h], after.currents[h]
                    )
                })
                .collect();
            if !moved.is_empty() {
                v.push(Violation::other(format!(
                    "`{}` failed (exit 1) without naming a host it could not put back, yet hosts moved: {}",
                    ran.label,
                    moved.join(", ")
                )));
            }
        }
    }
    v
}

fn pick(currents: &[Option<String>], hosts: &[usize]) -> Vec<Option<String>> {
    hosts.iter().map(|&h| currents[h].clone()).collect()
}

/// The invariants once the round is recovered.
pub fn after_recovery(
    suite: &Suite,
    recovery: &Recovery,
    behind: &BTreeMap<&'static str, Vec<usize>>,
    memory: &mut Memory,
) -> Vec<Violation> {
    let mut v = Vec::new();
    for p in &recovery.problems {
        v.push(Violation::other(format!("recovery: {p}")));
    }
    for ran in &recovery.log {
        if !DOCUMENTED.contains(&ran.code) {
            v.push(Violation::other(format!(
                "recovery `{}` exited {}: not an exit code the README documents",
                ran.label, ran.code
            )));
        }
    }
    // Every host: a complete release; no lock, no journal.
    let mut half = BTreeSet::new();
    for i in HOSTS {
        if let Some(why) = suite.incomplete(i) {
            half.insert(i);
            v.push(Violation {
                kind: Kind::HalfSwitched,
                count: 0,
                what: format!("host {i} ({}): {why}", env_of(i)),
            });
        }
        if suite.has_lock(i) {
            v.push(Violation::other(format!(
                "host {i} ({}): a lock is left after recovery: {}",
                env_of(i),
                std::fs::read_to_string(suite.meta(i).join("lock/owner.json")).unwrap_or_default()
            )));
        }
        if suite.has_journal(i) {
            v.push(Violation::other(format!(
                "host {i} ({}): a journal (.shipdeck/change.json) is left after recovery",
                env_of(i)
            )));
        }
    }
    // One release per environment, unless a host is marked behind.
    for env in ENVS {
        let marked = behind.get(env).cloned().unwrap_or_default();
        let mut on: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for &i in hosts_of(env) {
            if !marked.contains(&i) && !half.contains(&i) {
                on.entry(suite.current_id(i).unwrap_or_default())
                    .or_default()
                    .push(i);
            }
        }
        if on.len() > 1 {
            // The hosts not on the most common release count as half-switched.
            let most = on.values().map(Vec::len).max().unwrap_or(0);
            let mut minority: Vec<usize> = Vec::new();
            let mut seen_most = false;
            for hosts in on.values() {
                if hosts.len() == most && !seen_most {
                    seen_most = true;
                } else {
                    minority.extend(hosts);
                }
            }
            half.extend(minority.iter().copied());
            v.push(Violation {
                kind: Kind::HalfSwitched,
                count: 0,
                what: format!(
                    "{env} runs several releases and status marks no host behind: {on:?}"
                ),
            });
        }
    }
    if let Some(first) = v.iter_mut().find(|x| x.kind == Kind::HalfSwitched) {
        first.count = half.len() as u64;
    }
    // A resume that exited 0 left every host on the change's release.
    for (env, release) in &recovery.resumed {
        let marked = behind.get(env).cloned().unwrap_or_default();
        let off: Vec<String> = hosts_of(env)
            .iter()
            .filter(|i| !marked.contains(i))
            .filter(|&&i| suite.current_id(i).as_deref() != Some(release.as_str()))
            .map(|&i| format!("host {i}: {:?}", suite.current(i)))
            .collect();
        if !off.is_empty() {
            v.push(Violation::other(format!(
                "`shipdeck resume {env}` exited 0 but not every host runs the change's release {release}: {}",
                off.join(", ")
            )));
        }
    }
    // History: never shrinks, every line parses, its last effective record
    // is what `current` names.
    for i in HOSTS {
        let text = suite.history_text(i);
        let lines: Vec<&str> = text.lines().collect();
        if lines.len() < memory.lines[i] {
            v.push(Violation {
                kind: Kind::HistoryLost,
                count: (memory.lines[i] - lines.len()) as u64,
                what: format!(
                    "host {i}: history shrank from {} to {} lines",
                    memory.lines[i],
                    lines.len()
                ),
            });
            memory.bad_lines[i].clear();
        }
        let mut last: Option<(usize, String, Option<String>)> = None;
        for (n, line) in lines.iter().enumerate() {
            match serde_json::from_str::<serde_json::Value>(line) {
                Ok(r) if r.is_object() => {
                    let action = r["action"].as_str().unwrap_or_default();
                    // A failed record that says the host switched anyway
                    // (a rollback whose gate failed) moved it too.
                    let moved = r["outcome"] == "success" || r["switched"] == true;
                    if moved && SWITCHES.contains(&action) {
                        let release = r["release"].as_str().map(str::to_owned);
                        last = Some((n + 1, action.to_owned(), release));
                    }
                }
                _ => {
                    if memory.bad_lines[i].insert(n) {
                        v.push(Violation {
                            kind: Kind::HistoryLost,
                            count: 1,
                            what: format!(
                                "host {i}: history line {} does not parse: {:?}",
                                n + 1,
                                line.chars().take(120).collect::<String>()
                            ),
                        });
                    }
                }
            }
        }
        let current = suite.current_id(i);
        if let Some((n, action, release)) = last {
            if release != current {
                v.push(Violation::other(format!(
                    "host {i}: history's last effective record (line {n}, {action} {}) disagrees with current ({})",
                    release.as_deref().unwrap_or("-"),
                    current.as_deref().unwrap_or("-")
                )));
            }
        } else if current.is_some() {
            v.push(Violation::other(format!(
                "host {i}: current is {:?} but history has no effective record",
                current
            )));
        }
        memory.lines[i] = lines.len();
    }
    v
}

/// Totals over every round.
#[derive(Default)]
pub struct Tally {
    pub tried: u64,
    pub survived: u64,
    pub half_switched: u64,
    pub history_lost: u64,
    pub other: u64,
    pub skipped_disk: u64,
    pub unlocked: u64,
    pub reports: Vec<String>,
}

impl Tally {
    pub fn add(&mut self, violations: &[Violation], report: impl FnOnce() -> String) {
        self.tried += 1;
        if violations.is_empty() {
            self.survived += 1;
            return;
        }
        for x in violations {
            match x.kind {
                Kind::HalfSwitched => self.half_switched += x.count,
                Kind::HistoryLost => self.history_lost += x.count,
                Kind::Other => self.other += x.count,
            }
        }
        self.reports.push(report());
    }

    pub fn merge(&mut self, other: Tally) {
        self.tried += other.tried;
        self.survived += other.survived;
        self.half_switched += other.half_switched;
        self.history_lost += other.history_lost;
        self.other += other.other;
        self.skipped_disk += other.skipped_disk;
        self.unlocked += other.unlocked;
        self.reports.extend(other.reports);
    }

    pub fn summary(&self) -> String {
        format!(
            "faults: {} tried, {} survived, {} hosts half-switched, {} history lines lost, {} other violations",
            self.tried, self.survived, self.half_switched, self.history_lost, self.other
        )
    }

    pub fn clean(&self) -> bool {
        self.tried == self.survived
    }
}
