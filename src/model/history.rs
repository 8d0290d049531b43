//! Decisions read from a host's history, without I/O: what it ran before, which
//! releases passed their gate, which ones cleanup may remove.

use std::collections::HashMap;

use crate::model::time::parse_rfc3339;
use crate::model::{Action, HistoryRecord, Outcome, ReleaseId};

/// The releases a host has moved through, as an undo stack: a deploy pushes,
/// a rollback or revert pops back to its target. The top is what history says
/// `current` is; the one below it is where a rollback goes. Rolling back twice
/// therefore goes further back, never forward into the release just left.
pub fn release_stack(records: &[HistoryRecord]) -> Vec<ReleaseId> {
    let mut stack: Vec<ReleaseId> = Vec::new();
    for r in records
        .iter()
        .filter(|r| (r.outcome == Outcome::Success || r.switched) && r.action.switches())
    {
        match (r.action, &r.release) {
            (Action::Deploy | Action::Promote, Some(id)) if stack.last() != Some(id) => {
                stack.push(id.clone());
            }
            (Action::Rollback | Action::Revert | Action::Reconcile, Some(id)) => {
                match stack.iter().rposition(|s| s == id) {
                    Some(pos) => stack.truncate(pos + 1),
                    None => stack.push(id.clone()),
                }
            }
            (Action::Revert | Action::Reconcile, None) => stack.clear(),
            _ => {}
        }
    }
    stack
}

/// The release an environment was last sent to, by its hosts' histories: the
/// one named by the newest deploy, promote or rollback that left at least one
/// host on it. A host whose `current` is another one missed that change. A
/// host's success that its own change later took back (a canary that failed
/// its analysis) did not leave it there.
pub fn environment_release<'a>(
    histories: impl IntoIterator<Item = &'a [HistoryRecord]>,
) -> Option<ReleaseId> {
    histories
        .into_iter()
        .flat_map(|records| {
            let taken_back: Vec<&str> = records
                .iter()
                .filter(|r| {
                    matches!(r.action, Action::Deploy | Action::Promote)
                        && r.outcome == Outcome::Failed
                        && !r.switched
                })
                .map(|r| r.change.as_str())
                .collect();
            records.iter().filter(move |r| {
                matches!(
                    r.action,
                    Action::Deploy | Action::Promote | Action::Rollback
                ) && (r.outcome == Outcome::Success || r.switched)
                    && !taken_back.contains(&r.change.as_str())
            })
        })
        .filter_map(|r| r.release.as_ref().map(|id| (parse_rfc3339(&r.time), id)))
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, id)| id.clone())
}

/// Where a rollback from `current` goes, according to history.
pub fn previous_release(
    records: &[HistoryRecord],
    current: Option<&ReleaseId>,
) -> Option<ReleaseId> {
    let current = current?;
    let stack = release_stack(records);
    let pos = stack.iter().rposition(|s| s == current)?;
    pos.checked_sub(1).map(|p| stack[p].clone())
}

/// Whether this host ran `id` with exactly `sha256` and passed its health gate.
/// A pass that its own change later took back (the host was reverted because
/// another host failed) does not count.
pub fn passed_gate(records: &[HistoryRecord], id: &ReleaseId, sha256: &str) -> bool {
    let ships = |r: &&HistoryRecord| {
        matches!(r.action, Action::Deploy | Action::Promote)
            && r.release.as_ref() == Some(id)
            && r.sha256.as_deref() == Some(sha256)
    };
    let taken_back: Vec<&str> = records
        .iter()
        .filter(ships)
        .filter(|r| r.outcome == Outcome::Failed)
        .map(|r| r.change.as_str())
        .collect();
    records.iter().filter(ships).any(|r| {
        r.outcome == Outcome::Success
            && r.health.gate_passed()
            && !taken_back.contains(&r.change.as_str())
    })
}

/// Releases with a schema migration that went out on this host after
/// `target` last ran: a rollback to `target` would run code older than the
/// schema. Newest first, each once. A migration stays crossed after a forced
/// rollback, and after the change that ran it failed or was rolled back: the
/// schema did not go back with the code.
pub fn migrations_crossed(
    records: &[HistoryRecord],
    target: &ReleaseId,
) -> Vec<(ReleaseId, String)> {
    let mut crossed: Vec<(ReleaseId, String)> = Vec::new();
    for r in records.iter().rev() {
        if !matches!(r.action, Action::Deploy | Action::Promote) {
            continue;
        }
        let Some(release) = &r.release else { continue };
        if release == target && r.outcome == Outcome::Success {
            break;
        }
        if let Some(what) = &r.migration
            && !crossed.iter().any(|(id, _)| id == release)
        {
            crossed.push((release.clone(), what.clone()));
        }
    }
    crossed
}

/// Releases cleanup may delete: all but the newest `keep` (newest = most
/// recently named in history; never-named ones count as oldest, by name),
/// and never `current` or `previous`.
pub fn releases_to_remove(
    on_disk: &[ReleaseId],
    records: &[HistoryRecord],
    current: Option<&ReleaseId>,
    previous: Option<&ReleaseId>,
    keep: usize,
) -> Vec<ReleaseId> {
    let mut last_seen: HashMap<&ReleaseId, usize> = HashMap::new();
    for (i, r) in records.iter().enumerate() {
        for id in [&r.release, &r.from].into_iter().flatten() {
            last_seen.insert(id, i + 1);
        }
    }
    let mut ranked: Vec<&ReleaseId> = on_disk.iter().collect();
    // Newest first: by last mention, then by name (Capistrano ids are timestamps).
    ranked.sort_by(|a, b| {
        let ka = (last_seen.get(a).copied().unwrap_or(0), *a);
        let kb = (last_seen.get(b).copied().unwrap_or(0), *b);
        kb.cmp(&ka)
    });
    ranked
        .into_iter()
        .skip(keep)
        .filter(|id| Some(*id) != current && Some(*id) != previous)
        .cloned()
        .collect()
}

/// Records read from several hosts, put in the order things happened: by
/// time, then by change (a change's records on its hosts stay together).
pub fn in_order(records: &mut [HistoryRecord]) {
    records.sort_by(|a, b| {
        let at = |r: &HistoryRecord| parse_rfc3339(&r.time);
        at(a).cmp(&at(b)).then_with(|| a.change.cmp(&b.change))
    });
}

/// One change as a history lists it (`shipdeck history`, the console's
/// history view): its records on every host it touched, merged.
#[derive(Debug, Clone)]
pub struct ChangeLine<'a> {
    /// In the order given, never empty.
    pub records: Vec<&'a HistoryRecord>,
}

impl<'a> ChangeLine<'a> {
    /// The first record: time, who, what, where it went and from where.
    pub fn first(&self) -> &'a HistoryRecord {
        self.records[0]
    }

    /// Hosts that recorded a success.
    pub fn succeeded(&self) -> usize {
        self.records
            .iter()
            .filter(|r| r.outcome == Outcome::Success)
            .count()
    }

    /// `success 3/3`, or `FAILED 1/3` when any host did not succeed.
    pub fn outcome(&self) -> String {
        let (ok, all) = (self.succeeded(), self.records.len());
        if ok == all {
            format!("success {ok}/{all}")
        } else {
            format!("FAILED {}/{all}", all - ok)
        }
    }

    /// The hosts (as their records name them) that did not succeed.
    pub fn failed_hosts(&self) -> Vec<&'a str> {
        self.records
            .iter()
            .filter(|r| r.outcome != Outcome::Success)
            .map(|r| r.host.as_str())
            .collect()
    }

    /// The first message any of its records carries (a reason, an override,
    /// what failed).
    pub fn message(&self) -> Option<&'a str> {
        self.records.iter().find_map(|r| r.message.as_deref())
    }
}

/// One line per change, in the order of `records` (oldest first when they
/// went through [`in_order`]): a change's records on each host merged, and a
/// change that did two things (a failed deploy and the revert it caused)
/// listed once per action.
pub fn changes(records: &[HistoryRecord]) -> Vec<ChangeLine<'_>> {
    let mut lines: Vec<ChangeLine<'_>> = Vec::new();
    for r in records {
        match lines
            .iter_mut()
            .find(|l| l.first().change == r.change && l.first().action == r.action)
        {
            Some(l) => l.records.push(r),
            None => lines.push(ChangeLine { records: vec![r] }),
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::HealthVerdict;

    fn id(s: &str) -> ReleaseId {
        ReleaseId::parse(s).unwrap()
    }

    use super::tests_support::record as rec;

    use Action::*;
    use Outcome::*;

    fn migrating(release: &str, what: &str) -> HistoryRecord {
        let mut r = rec(Deploy, Some(release), Success);
        r.migration = Some(what.to_owned());
        r
    }

    #[test]
    fn the_environment_is_on_the_release_its_newest_change_put_a_host_on() {
        use crate::model::history::tests_support::record;
        let at = |time: &str, mut r: HistoryRecord| {
            r.time = time.into();
            r
        };
        let web1 = vec![
            at(
                "2026-11-22T01:00:00Z",
                record(Action::Deploy, Some("v2"), Outcome::Success),
            ),
            at(
                "2026-11-22T03:00:00Z",
                record(Action::Rollback, Some("v1"), Outcome::Success),
            ),
        ];
        // web-3 was unreachable for the rollback, and a later deploy failed.
        let web3 = vec![
            at(
                "2026-11-22T01:00:00Z",
                record(Action::Deploy, Some("v2"), Outcome::Success),
            ),
            at(
                "2026-11-22T04:00:00Z",
                record(Action::Deploy, Some("v3"), Outcome::Failed),
            ),
        ];
        assert_eq!(
            environment_release([web1.as_slice(), web3.as_slice()]),
            Some(id("v1"))
        );
        // A canary host passed its gate, then its analysis failed: taken back.
        let mut passed = record(Action::Promote, Some("v4"), Outcome::Success);
        passed.change = "c9".into();
        passed.time = "2026-11-22T05:00:00Z".into();
        let mut failed = passed.clone();
        failed.outcome = Outcome::Failed;
        let canary = vec![passed, failed];
        assert_eq!(
            environment_release([web1.as_slice(), canary.as_slice()]),
            Some(id("v1"))
        );
        assert_eq!(environment_release([&[][..]]), None);
    }

    #[test]
    fn a_change_is_one_line_across_its_hosts_and_its_actions() {
        let on = |host: &str, action, outcome, time: &str| {
            let mut r = rec(action, Some("v2"), outcome);
            r.host = host.into();
            r.time = time.into();
            r
        };
        let mut records = vec![
            on("web-2", Deploy, Failed, "2026-11-22T01:00:00.200Z"),
            on("web-1", Deploy, Success, "2026-11-22T01:00:00.100Z"),
            on("web-1", Revert, Success, "2026-11-22T01:00:01Z"),
        ];
        let mut later = rec(Rollback, Some("v1"), Success);
        later.change = "c2".into();
        later.time = "2026-11-22T02:00:00Z".into();
        records.insert(0, later);
        in_order(&mut records);
        let lines = changes(&records);
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].first().host, "web-1", "oldest first");
        assert_eq!(lines[0].outcome(), "FAILED 1/2");
        assert_eq!(lines[0].failed_hosts(), ["web-2"]);
        assert_eq!(lines[1].first().action, Revert);
        assert_eq!(lines[1].outcome(), "success 1/1");
        assert_eq!(lines[2].first().action, Rollback);
        assert!(lines[2].failed_hosts().is_empty());
    }

    #[test]
    fn a_rollback_crosses_the_migrations_deployed_after_its_target() {
        let h = vec![
            rec(Deploy, Some("v1"), Success),
            migrating("v2", "add users.email"),
            rec(Deploy, Some("v3"), Success),
        ];
        assert_eq!(
            migrations_crossed(&h, &id("v1")),
            vec![(id("v2"), "add users.email".to_owned())]
        );
        // Going back to the release that migrated crosses nothing.
        assert!(migrations_crossed(&h, &id("v2")).is_empty());
        // A change that failed (or whose canary was rolled back) after its
        // migration ran left the schema migrated: that is crossed too.
        let mut failed = migrating("v4", "drop column");
        failed.outcome = Failed;
        let mut h2 = h.clone();
        h2.push(failed);
        h2.push(rec(Revert, Some("v3"), Success));
        assert_eq!(
            migrations_crossed(&h2, &id("v3")),
            vec![(id("v4"), "drop column".to_owned())]
        );
        assert_eq!(migrations_crossed(&h2, &id("v1")).len(), 2);
        // After a forced rollback to v1 the schema is still v2's: going back
        // from a later release to v1 again still crosses it.
        let mut h3 = h.clone();
        h3.push(rec(Rollback, Some("v1"), Success));
        h3.push(rec(Deploy, Some("v5"), Success));
        assert_eq!(migrations_crossed(&h3, &id("v1")).len(), 1);
    }

    #[test]
    fn rollback_goes_to_the_release_before_current() {
        let h = [
            rec(Deploy, Some("v1"), Success),
            rec(Deploy, Some("v2"), Success),
        ];
        assert_eq!(previous_release(&h, Some(&id("v2"))), Some(id("v1")));
        assert_eq!(previous_release(&h, Some(&id("v1"))), None);
    }

    #[test]
    fn rolling_back_twice_goes_further_back_not_forward() {
        let h = [
            rec(Deploy, Some("v1"), Success),
            rec(Deploy, Some("v2"), Success),
            rec(Deploy, Some("v3"), Success),
            rec(Rollback, Some("v2"), Success),
        ];
        assert_eq!(previous_release(&h, Some(&id("v2"))), Some(id("v1")));
    }

    #[test]
    fn failed_and_reverted_changes_do_not_count() {
        let h = [
            rec(Deploy, Some("v1"), Success),
            rec(Deploy, Some("v2"), Failed),
            rec(Deploy, Some("v3"), Success),
            rec(Revert, Some("v1"), Success),
        ];
        assert_eq!(release_stack(&h), [id("v1")]);
        assert_eq!(previous_release(&h, Some(&id("v1"))), None);
    }

    #[test]
    fn a_release_history_does_not_know_has_no_previous() {
        let h = [rec(Deploy, Some("v1"), Success)];
        assert_eq!(previous_release(&h, Some(&id("manual"))), None);
        assert_eq!(previous_release(&h, None), None);
    }

    #[test]
    fn the_gate_needs_the_same_sha_and_a_passed_health_check() {
        let mut ok = rec(Deploy, Some("v2"), Success);
        assert!(passed_gate(&[ok.clone()], &id("v2"), "sha-v2"));
        assert!(!passed_gate(&[ok.clone()], &id("v2"), "sha-other"));
        assert!(!passed_gate(&[ok.clone()], &id("v3"), "sha-v2"));
        ok.health = HealthVerdict::Failed;
        assert!(!passed_gate(&[ok.clone()], &id("v2"), "sha-v2"));
        ok.health = HealthVerdict::NotConfigured;
        assert!(passed_gate(&[ok.clone()], &id("v2"), "sha-v2"));
        ok.outcome = Failed;
        assert!(!passed_gate(&[ok], &id("v2"), "sha-v2"));
        let rb = rec(Rollback, Some("v2"), Success);
        assert!(!passed_gate(&[rb], &id("v2"), "sha-v2"));
        let pass = rec(Deploy, Some("v2"), Success);
        let taken_back = rec(Deploy, Some("v2"), Failed);
        assert!(!passed_gate(
            &[pass.clone(), taken_back],
            &id("v2"),
            "sha-v2"
        ));
        let mut other_change = rec(Deploy, Some("v2"), Failed);
        other_change.change = "c0".into();
        assert!(passed_gate(&[other_change, pass], &id("v2"), "sha-v2"));
    }

    #[test]
    fn cleanup_keeps_the_newest_and_never_current_or_previous() {
        let disk: Vec<_> = ["v1", "v2", "v3", "v4", "v5", "zz-unknown"]
            .map(id)
            .to_vec();
        let h: Vec<_> = ["v1", "v2", "v3", "v4", "v5"]
            .iter()
            .map(|v| rec(Deploy, Some(v), Success))
            .collect();
        assert_eq!(
            releases_to_remove(&disk, &h, Some(&id("v5")), Some(&id("v4")), 2),
            ["v3", "v2", "v1", "zz-unknown"].map(id)
        );
        // After a rollback to v1, v1 is current and must stay, v5 is newest.
        assert_eq!(
            releases_to_remove(&disk, &h, Some(&id("v1")), None, 2),
            ["v3", "v2", "zz-unknown"].map(id)
        );
    }
}

#[cfg(test)]
pub(crate) mod tests_support {
    use crate::model::{Action, HealthVerdict, HistoryRecord, Operator, Outcome, ReleaseId};

    pub fn record(action: Action, release: Option<&str>, outcome: Outcome) -> HistoryRecord {
        HistoryRecord {
            time: "2026-11-22T00:00:00Z".into(),
            operator: Operator {
                who: "alice".into(),
                machine: "laptop".into(),
            },
            change: "c1".into(),
            action,
            env: "production".into(),
            host: "web-1".into(),
            release: release.map(|r| ReleaseId::parse(r).unwrap()),
            sha256: release.map(|r| format!("sha-{r}")),
            from: None,
            outcome,
            switched: false,
            health: HealthVerdict::Passed,
            duration_ms: 1,
            message: None,
            migration: None,
        }
    }
}
