//! What a host runs, read in one round trip and parsed without I/O.

use std::collections::BTreeMap;

use super::layout::Layout;
use super::sh::quote;
use crate::model::history::previous_release;
use crate::model::journal::{ChangeInfo, Journal};
use crate::model::pending::PendingFinish;
use crate::model::{HistoryRecord, LockOwner, Operator, ReleaseId, Slot};

/// History lines read back per probe; enough for every decision shipdeck makes
/// (previous release, promotion gate, cleanup order) without reading a
/// years-long file over the wire.
pub const HISTORY_TAIL: usize = 2_000;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostState {
    /// Whether `deploy_to` exists at all.
    pub exists: bool,
    /// What `current` points at, as written in the link.
    pub current_link: Option<String>,
    /// Release directories under `releases/`, by name.
    pub releases: Vec<ReleaseId>,
    /// Releases unpacked and verified by shipdeck, with their sha256.
    pub verified: BTreeMap<ReleaseId, String>,
    pub lock: Option<LockState>,
    pub history: Vec<HistoryRecord>,
    /// History lines that are not records (a torn append, a hand edit), by
    /// line number in `.shipdeck/history.jsonl`: reported wherever history
    /// is shown or decides something, never skipped silently.
    pub corrupt_history: Vec<CorruptLine>,
    /// The journal of a change in progress (or interrupted) on this host.
    pub journal: Option<Journal>,
    /// A word for a paused change, as written by `shipdeck continue`/`abort`.
    pub signal: Option<String>,
    /// The blue/green slot taking traffic.
    pub live_slot: Option<Slot>,
    /// A blue/green change whose old slot still runs.
    pub pending_finish: Option<PendingFinish>,
}

/// Where a host stands, as `status`, `check` and the console show it: the
/// one projection of a probe, so the views cannot disagree.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Standing {
    pub current: Option<ReleaseId>,
    /// Where a rollback goes, by the host's history.
    pub previous: Option<ReleaseId>,
    /// `previous` is still on disk, so a rollback can switch to it at once.
    pub rollback_ready: bool,
    /// Release directories on disk, sorted by name.
    pub releases: Vec<ReleaseId>,
    /// Who holds the lock, as `LockState::describe` says it.
    pub lock: Option<String>,
    /// A change in progress on the host, or interrupted, by its journal.
    pub change: Option<ChangeInfo>,
    /// Blue/green: the slot taking traffic.
    pub live_slot: Option<Slot>,
    /// Blue/green: the old slot still running until the change is finished.
    pub pending_finish: Option<PendingFinish>,
}

/// One line of a host's history that is not a history record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CorruptLine {
    /// 1-based, in the whole file (not only the tail read back).
    pub line: usize,
    /// The line's start, as found.
    pub text: String,
}

/// How much of a corrupt line a report quotes.
const CORRUPT_EXCERPT_CHARS: usize = 60;

impl CorruptLine {
    pub fn describe(&self, host: &str) -> String {
        format!(
            "{host}: history line {} (.shipdeck/history.jsonl) is corrupt and was not read: {:?}",
            self.line, self.text
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockState {
    Owned(LockOwner),
    /// The lock directory exists but says nothing readable about its holder.
    Unknown(String),
}

impl LockState {
    pub fn describe(&self) -> String {
        match self {
            LockState::Owned(o) => o.describe(),
            LockState::Unknown(raw) if raw.is_empty() => "an unknown holder (no owner file)".into(),
            LockState::Unknown(raw) => format!("an unreadable owner file: {raw}"),
        }
    }

    pub fn owner(&self) -> Option<&LockOwner> {
        match self {
            LockState::Owned(o) => Some(o),
            LockState::Unknown(_) => None,
        }
    }
}

impl HostState {
    /// The release `current` points at, when it points into `releases/`.
    pub fn current(&self) -> Option<ReleaseId> {
        let link = self.current_link.as_deref()?;
        let name = link.trim_end_matches('/').rsplit('/').next()?;
        let parent = link.trim_end_matches('/').strip_suffix(name)?;
        if !parent.trim_end_matches('/').ends_with("releases") {
            return None;
        }
        ReleaseId::parse(name).ok()
    }

    pub fn has_release(&self, id: &ReleaseId) -> bool {
        self.releases.contains(id)
    }

    /// Where the host stands, judging a change's liveness from `this`
    /// machine and user.
    pub fn standing(&self, this: &Operator) -> Standing {
        let current = self.current();
        let previous = previous_release(&self.history, current.as_ref());
        Standing {
            rollback_ready: previous.as_ref().is_some_and(|p| self.has_release(p)),
            current,
            previous,
            releases: self.releases.clone(),
            lock: self.lock.as_ref().map(LockState::describe),
            change: self
                .journal
                .as_ref()
                .map(|j| ChangeInfo::new(j, crate::signal::liveness(&j.operator, j.pid, this))),
            live_slot: self.live_slot,
            pending_finish: self.pending_finish.clone(),
        }
    }

    /// One warning per corrupt history line, naming the host and the line,
    /// and `decides`: who reads the history for what ("this rollback reads").
    pub fn history_warnings(&self, host: &str, decides: &str) -> Vec<String> {
        self.corrupt_history
            .iter()
            .map(|c| {
                format!(
                    "warning: {}; {decides} only the other lines",
                    c.describe(host)
                )
            })
            .collect()
    }

    /// Whether `id` is on disk and known to hold exactly `sha256`.
    pub fn has_verified(&self, id: &ReleaseId, sha256: &str) -> bool {
        self.has_release(id) && self.verified.get(id).is_some_and(|s| s == sha256)
    }
}

/// Prints the state of a host, one keyed line per fact, then its history.
/// Shell builtins wherever they do: on fifty hosts at once, every process a
/// probe forks is CPU the hosts' sshd needs for the next step.
pub fn probe_script(layout: &Layout) -> String {
    format!(
        r#"d={root}
if [ ! -d "$d" ]; then echo absent; exit 0; fi
cd "$d" || exit 1
echo present
if [ -L current ]; then printf 'current %s\n' "$(readlink current)"; fi
for r in releases/*; do if [ -d "$r" ]; then printf 'release %s\n' "${{r#releases/}}"; fi; done
for v in .shipdeck/verified/*; do if [ -f "$v" ]; then read -r sha < "$v"; printf 'verified %s %s\n' "${{v#.shipdeck/verified/}}" "$sha"; fi; done
if [ -f .shipdeck/change.json ]; then read -r j < .shipdeck/change.json; printf 'journal %s\n' "$j"; fi
if [ -f .shipdeck/slot ]; then read -r s < .shipdeck/slot; printf 'slot %s\n' "$s"; fi
if [ -f .shipdeck/finish.json ]; then read -r f < .shipdeck/finish.json; printf 'finish %s\n' "$f"; fi
if [ -f .shipdeck/signal ]; then read -r s < .shipdeck/signal; printf 'signal %s\n' "$s"; fi
if [ -d .shipdeck/lock ]; then o=; if [ -f .shipdeck/lock/owner.json ]; then read -r o < .shipdeck/lock/owner.json; fi; printf 'lock %s\n' "$o"; fi
if [ -f .shipdeck/history.jsonl ]; then n=$(wc -l < .shipdeck/history.jsonl); printf '{HISTORY_LINES} %s\n' $n; echo {HISTORY_FOLLOWS}; exec tail -n {tail} .shipdeck/history.jsonl; fi
"#,
        root = quote(layout.root()),
        tail = HISTORY_TAIL,
    )
}

/// Every line after this one is a history line.
const HISTORY_FOLLOWS: &str = "history-follows";
/// How many newlines the whole history file holds, to number the tail's lines.
const HISTORY_LINES: &str = "history-lines";

pub fn parse_probe(stdout: &str) -> HostState {
    let mut state = HostState::default();
    let mut newlines: Option<usize> = None;
    let mut lines = stdout.lines();
    for line in lines.by_ref() {
        if line == HISTORY_FOLLOWS {
            break;
        }
        let (key, rest) = line.split_once(' ').unwrap_or((line, ""));
        match key {
            "present" => state.exists = true,
            "current" => state.current_link = Some(rest.to_owned()),
            "release" => {
                if let Ok(id) = ReleaseId::parse(rest) {
                    state.releases.push(id);
                }
            }
            "verified" => {
                if let Some((id, sha)) = rest.split_once(' ')
                    && let Ok(id) = ReleaseId::parse(id)
                {
                    state.verified.insert(id, sha.trim().to_owned());
                }
            }
            "journal" => state.journal = serde_json::from_str(rest).ok(),
            "signal" => state.signal = Some(rest.to_owned()),
            "slot" => {
                state.live_slot = match rest.trim() {
                    "blue" => Some(Slot::Blue),
                    "green" => Some(Slot::Green),
                    _ => None,
                }
            }
            HISTORY_LINES => newlines = rest.trim().parse().ok(),
            "finish" => state.pending_finish = serde_json::from_str(rest).ok(),
            "lock" => {
                state.lock = Some(match serde_json::from_str::<LockOwner>(rest) {
                    Ok(owner) => LockState::Owned(owner),
                    Err(_) => LockState::Unknown(rest.to_owned()),
                })
            }
            _ => {}
        }
    }
    let tail: Vec<&str> = lines.collect();
    // The file's lines: its newlines, and one more if the last line is torn
    // (the tail then does not end with a newline). The tail is the last of them.
    let torn = !tail.is_empty() && !stdout.ends_with('\n');
    let total = newlines.map_or(tail.len(), |n| n + usize::from(torn));
    let first = total.saturating_sub(tail.len()) + 1;
    for (i, line) in tail.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<HistoryRecord>(line) {
            Ok(r) => state.history.push(r),
            Err(_) => state.corrupt_history.push(CorruptLine {
                line: first + i,
                text: line.chars().take(CORRUPT_EXCERPT_CHARS).collect(),
            }),
        }
    }
    state.releases.sort();
    state
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_is_the_release_the_link_names() {
        let mut s = HostState {
            current_link: Some("releases/v2".into()),
            ..Default::default()
        };
        assert_eq!(s.current(), Some(ReleaseId::parse("v2").unwrap()));
        s.current_link = Some("/srv/app/releases/20260101/".into());
        assert_eq!(s.current(), Some(ReleaseId::parse("20260101").unwrap()));
        s.current_link = Some("/elsewhere/v2".into());
        assert_eq!(s.current(), None);
        s.current_link = Some("releases/.v2.tmp-1".into());
        assert_eq!(s.current(), None);
    }

    #[test]
    fn parses_every_kind_of_line_and_survives_junk() {
        let out = "present\ncurrent releases/v2\nrelease v1\nrelease v2\nrelease bad;id\n\
                   verified v2 abc123\nlock {not json\nnoise\nhistory-follows\n{\"broken\n";
        let s = parse_probe(out);
        assert!(s.exists);
        assert_eq!(s.releases.len(), 2);
        assert_eq!(
            s.verified.get(&ReleaseId::parse("v2").unwrap()).unwrap(),
            "abc123"
        );
        assert_eq!(s.lock, Some(LockState::Unknown("{not json".into())));
        assert_eq!(
            s.corrupt_history,
            vec![CorruptLine {
                line: 1,
                text: "{\"broken".into()
            }]
        );
    }

    #[test]
    fn corrupt_lines_are_numbered_in_the_whole_file_torn_last_line_included() {
        let rec = r#"{"time":"t","who":"a","machine":"m","change":"c","action":"deploy","env":"e","host":"h","outcome":"success","health":"passed","duration_ms":0}"#;
        // 10 newlines in the file, a torn 11th line; the tail read back is the last 3.
        let out =
            format!("present\nhistory-lines 10\nhistory-follows\n{{oops\n{rec}\n{{\"time\":\"2026");
        let s = parse_probe(&out);
        assert_eq!(s.history.len(), 1, "{s:?}");
        let lines: Vec<usize> = s.corrupt_history.iter().map(|c| c.line).collect();
        assert_eq!(lines, [9, 11]);
        assert!(s.history_warnings("web-1", "this rollback reads")[1].starts_with(
            "warning: web-1: history line 11 (.shipdeck/history.jsonl) is corrupt and was not read"
        ));
    }
}
