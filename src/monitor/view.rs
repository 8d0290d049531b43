//! What a host runs, as the console shows it, and a cheap way to tell that it
//! may have changed.

use std::sync::OnceLock;

use crate::host::HostState;
use crate::model::journal::ChangeInfo;
use crate::model::pending::PendingFinish;
use crate::model::{HistoryRecord, Operator, ReleaseId, Slot};

/// History records kept per host in a [`HostView`]: the newest ones. Enough
/// for the console's history list and for `passed_gate` on recent releases.
pub const VIEW_HISTORY: usize = 100;

/// What a host runs now, read from the host itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostView {
    pub current: Option<ReleaseId>,
    /// Where a rollback goes, by the host's history.
    pub previous: Option<ReleaseId>,
    /// `previous` is still on disk, so a rollback can switch to it at once.
    pub rollback_ready: bool,
    /// Release directories on disk, sorted by name.
    pub releases: Vec<ReleaseId>,
    /// Who holds the lock, as `LockState::describe` says it.
    pub lock: Option<String>,
    /// The newest [`VIEW_HISTORY`] records, oldest first.
    pub history: Vec<HistoryRecord>,
    /// A change in progress on the host, or interrupted, by its journal
    /// (boxed: most hosts have none, and a view travels in every state event).
    pub change: Option<Box<ChangeInfo>>,
    /// Blue/green: the slot taking traffic.
    pub live_slot: Option<Slot>,
    /// Blue/green: the old slot still running until the change is finished.
    pub pending_finish: Option<Box<PendingFinish>>,
    /// History lines that are not records, by line number: shown, never
    /// skipped silently.
    pub corrupt_history: Vec<usize>,
}

/// This machine and user, to tell a live change's process from a dead one.
pub(super) fn this_machine() -> &'static Operator {
    static THIS: OnceLock<Operator> = OnceLock::new();
    THIS.get_or_init(Operator::current)
}

impl HostView {
    pub fn from_state(state: &HostState) -> HostView {
        let s = state.standing(this_machine());
        let skip = state.history.len().saturating_sub(VIEW_HISTORY);
        HostView {
            current: s.current,
            previous: s.previous,
            rollback_ready: s.rollback_ready,
            releases: s.releases,
            lock: s.lock,
            history: state.history[skip..].to_vec(),
            change: s.change.map(Box::new),
            live_slot: s.live_slot,
            pending_finish: s.pending_finish.map(Box::new),
            corrupt_history: state.corrupt_history.iter().map(|c| c.line).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::Layout;
    use crate::host::parse_probe;
    use crate::host::readings::{monitor_tick_script, split_monitor_tick};

    fn record(action: &str, release: &str) -> String {
        format!(
            r#"{{"time":"2026-01-01T00:00:00Z","who":"alice","machine":"laptop","change":"c-{release}","action":"{action}","env":"production","host":"web-1","release":"{release}","outcome":"success","health":"passed","duration_ms":1}}"#
        )
    }

    #[test]
    fn previous_and_rollback_ready_come_from_history_and_disk() {
        let probe = format!(
            "present\ncurrent releases/v3\nrelease v1\nrelease v3\nhistory-follows\n{}\n{}\n{}\n",
            record("deploy", "v1"),
            record("deploy", "v2"),
            record("deploy", "v3"),
        );
        let state = parse_probe(&probe);
        assert_eq!(state.history.len(), 3, "{state:?}");
        let view = HostView::from_state(&state);
        assert_eq!(view.current, Some(ReleaseId::parse("v3").unwrap()));
        assert_eq!(view.previous, Some(ReleaseId::parse("v2").unwrap()));
        assert!(!view.rollback_ready, "v2 was cleaned up");
        assert_eq!(view.releases.len(), 2);

        let probe = probe.replace("release v1\n", "release v2\n");
        let view = HostView::from_state(&parse_probe(&probe));
        assert!(view.rollback_ready);
    }

    #[test]
    fn keeps_only_the_newest_history() {
        let lines: Vec<String> = (0..VIEW_HISTORY + 20)
            .map(|i| record("deploy", &format!("v{i}")))
            .collect();
        let probe = format!(
            "present\ncurrent releases/v{}\nhistory-follows\n{}\n",
            VIEW_HISTORY + 19,
            lines.join("\n")
        );
        let view = HostView::from_state(&parse_probe(&probe));
        assert_eq!(view.history.len(), VIEW_HISTORY);
        assert_eq!(
            view.history.last().and_then(|r| r.release.clone()),
            view.current
        );
    }

    #[test]
    fn a_journal_on_the_host_becomes_a_change_with_its_liveness() {
        use crate::model::change::ChangeKind;
        use crate::model::journal::{Journal, Liveness};

        let journal = |machine: &str, pid: u32| Journal {
            change: "c-9".into(),
            env: "production".into(),
            kind: ChangeKind::Deploy,
            release: ReleaseId::parse("v3").unwrap(),
            sha256: "abc".into(),
            operator: Operator {
                who: "alice".into(),
                machine: machine.into(),
            },
            pid,
            started: "2026-01-01T00:00:00Z".into(),
            strategy: "all-at-once".into(),
            hosts: vec!["web-1".into()],
            batches: vec![vec![0]],
            pauses: vec![Vec::new()],
            run_once_on: None,
            host: "web-1".into(),
            from: None,
            done: Vec::new(),
            updated: String::new(),
            pause: None,
            migration: None,
        };
        let view = |j: &Journal| {
            let probe = format!("present\njournal {}\n", serde_json::to_string(j).unwrap());
            HostView::from_state(&parse_probe(&probe)).change.unwrap()
        };
        let here = this_machine().machine.clone();
        let elsewhere = view(&journal("not-this-machine.example", 1));
        assert_eq!(elsewhere.liveness, Liveness::Elsewhere);
        assert_eq!(elsewhere.change, "c-9");
        let alive = view(&journal(&here, std::process::id()));
        assert_eq!(alive.liveness, Liveness::Running);
        // A pid that cannot be running: past the kernel's pid_max.
        let dead = view(&journal(&here, 4_194_305));
        assert_eq!(dead.liveness, Liveness::Interrupted);
        assert!(
            HostView::from_state(&parse_probe("present\n"))
                .change
                .is_none()
        );
    }

    #[test]
    fn the_fingerprint_changes_with_what_the_view_is_read_from() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("app");
        let layout = Layout::new(&root.to_string_lossy());
        // The fingerprint half of the monitor's tick, as the poller reads it.
        let print = || {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(monitor_tick_script(&layout))
                .output()
                .unwrap();
            let out = String::from_utf8(out.stdout).unwrap();
            split_monitor_tick(&out).1.expect("the marker").to_owned()
        };
        assert_eq!(print(), "absent\n");
        std::fs::create_dir_all(root.join("releases/v1")).unwrap();
        std::fs::create_dir_all(root.join(".shipdeck")).unwrap();
        let empty = print();
        std::os::unix::fs::symlink("releases/v1", root.join("current")).unwrap();
        let linked = print();
        assert_ne!(empty, linked);
        assert!(linked.contains("releases/v1"), "{linked}");
        std::fs::write(root.join(".shipdeck/history.jsonl"), "{}\n").unwrap();
        let recorded = print();
        assert_ne!(linked, recorded);
        std::fs::create_dir(root.join(".shipdeck/lock")).unwrap();
        let locked = print();
        assert_ne!(recorded, locked);
        std::fs::remove_dir(root.join(".shipdeck/lock")).unwrap();
        assert_eq!(print(), recorded);
        std::fs::write(root.join(".shipdeck/change.json"), "{}\n").unwrap();
        assert_ne!(print(), recorded, "a change's journal appeared");
        std::fs::remove_file(root.join(".shipdeck/change.json")).unwrap();
        assert_eq!(print(), recorded);
    }
}
