use super::*;
use crate::engine::history::tests_support::record;
use crate::model::{Action, HostCount, Outcome};

fn id(s: &str) -> ReleaseId {
    ReleaseId::parse(s).unwrap()
}

fn names(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("web-{i}")).collect()
}

fn on(release: Option<&str>, on_disk: &[&str], history: &[(Action, &str)]) -> HostState {
    HostState {
        exists: true,
        current_link: release.map(|r| format!("releases/{r}")),
        releases: on_disk.iter().map(|r| id(r)).collect(),
        verified: on_disk
            .iter()
            .map(|r| (id(r), format!("sha-{r}")))
            .collect(),
        history: history
            .iter()
            .map(|(a, r)| record(*a, Some(r), Outcome::Success))
            .collect(),
        ..Default::default()
    }
}

fn hooks() -> Hooks {
    Hooks {
        before_switch: vec!["./prepare".into()],
        run_once: vec!["./migrate".into()],
        restart: Some("./restart".into()),
        after_switch: vec![],
        ..Default::default()
    }
}

fn deploy(strategy: &Strategy, states: &[HostState]) -> Plan {
    let names = names(states.len());
    plan_deploy(&DeployInput {
        env: "production",
        kind: ChangeKind::Deploy,
        strategy,
        names: &names,
        states,
        release: &id("v2"),
        sha256: "sha-v2",
        hooks: &hooks(),
        has_health: true,
        has_shared: false,
    })
}

#[test]
fn all_at_once_is_one_batch_with_run_once_on_the_first_host() {
    let states = vec![on(Some("v1"), &["v1"], &[]); 3];
    let plan = deploy(&Strategy::AllAtOnce, &states);
    assert_eq!(plan.batches, [vec![0, 1, 2]]);
    assert_eq!(plan.run_once_on, Some(0));
    assert_eq!(
        plan.hosts[0].prepare,
        [Step::Upload, Step::BeforeSwitch, Step::RunOnce]
    );
    assert_eq!(plan.hosts[1].prepare, [Step::Upload, Step::BeforeSwitch]);
    assert_eq!(
        plan.hosts[2].publish,
        [Step::Switch, Step::Restart, Step::Health, Step::Record]
    );
    assert_eq!(plan.hosts[2].from, Some(id("v1")));
}

#[test]
fn rolling_batches_by_count_and_percentage_of_the_environment() {
    let states = vec![on(Some("v1"), &["v1"], &[]); 5];
    let two = Strategy::Rolling {
        batch: HostCount::Count(2),
        max_failures: 1,
    };
    let plan = deploy(&two, &states);
    assert_eq!(plan.batches, [vec![0, 1], vec![2, 3], vec![4]]);
    assert_eq!(plan.max_failures, 1);
    let forty = Strategy::Rolling {
        batch: HostCount::Percent(40),
        max_failures: 0,
    };
    assert_eq!(
        deploy(&forty, &states).batches,
        [vec![0, 1], vec![2, 3], vec![4]]
    );
}

#[test]
fn hosts_already_on_the_release_are_skipped_and_verified_files_not_uploaded() {
    let states = vec![
        on(Some("v2"), &["v1", "v2"], &[]),
        on(Some("v1"), &["v1", "v2"], &[]),
        on(None, &[], &[]),
    ];
    let plan = deploy(&Strategy::AllAtOnce, &states);
    assert_eq!(plan.hosts[0].skip.as_deref(), Some("already runs v2"));
    assert_eq!(plan.batches, [vec![1, 2]]);
    assert_eq!(plan.run_once_on, Some(1));
    assert!(!plan.hosts[1].prepare.contains(&Step::Upload));
    assert!(plan.hosts[2].prepare.contains(&Step::Upload));
}

#[test]
fn nothing_to_do_when_every_host_runs_it() {
    let states = vec![on(Some("v2"), &["v2"], &[]); 2];
    let plan = deploy(&Strategy::AllAtOnce, &states);
    assert!(plan.is_empty());
    assert!(plan.batches.is_empty());
    assert_eq!(plan.run_once_on, None);
}

use Action::Deploy;

#[test]
fn rollback_targets_the_previous_release_from_history() {
    let h = [(Deploy, "v1"), (Deploy, "v2")];
    let states = vec![on(Some("v2"), &["v1", "v2"], &h); 3];
    let plan = plan_rollback("production", &names(3), &states, None, &hooks(), true).unwrap();
    assert_eq!(plan.release, Some(id("v1")));
    assert_eq!(plan.batches, [vec![0, 1, 2]]);
    assert_eq!(
        plan.hosts[0].publish,
        [Step::Switch, Step::Restart, Step::Health, Step::Record]
    );
}

#[test]
fn rollback_refuses_naming_the_hosts_missing_the_target() {
    let h = [(Deploy, "v1"), (Deploy, "v2")];
    let states = vec![
        on(Some("v2"), &["v1", "v2"], &h),
        on(Some("v2"), &["v2"], &h),
        on(Some("v2"), &["v2"], &h),
    ];
    let err = plan_rollback("production", &names(3), &states, None, &hooks(), false).unwrap_err();
    assert_eq!(
        err.to_string(),
        "v1 is not on disk on web-2, web-3: cannot roll back there"
    );
    let err = plan_rollback(
        "production",
        &names(3),
        &states,
        Some(&id("v0")),
        &hooks(),
        false,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("v0 is not on disk on web-1, web-2, web-3")
    );
}

#[test]
fn rollback_without_history_asks_for_a_target() {
    let states = vec![on(Some("v2"), &["v1", "v2"], &[]); 2];
    let err = plan_rollback("production", &names(2), &states, None, &hooks(), false).unwrap_err();
    assert!(matches!(err, RollbackRefusal::NoPrevious(_)));
    let plan = plan_rollback(
        "production",
        &names(2),
        &states,
        Some(&id("v1")),
        &hooks(),
        false,
    )
    .unwrap();
    assert_eq!(plan.batches, [vec![0, 1]]);
}

fn journal(host: &str, from: &str, done: &[Step]) -> crate::engine::journal::Journal {
    crate::engine::journal::Journal {
        change: "c-1".into(),
        env: "production".into(),
        kind: ChangeKind::Deploy,
        release: id("v3"),
        sha256: "sha-v3".into(),
        operator: crate::model::Operator {
            who: "alice".into(),
            machine: "laptop".into(),
        },
        pid: 1,
        started: "2026-01-01T00:00:00Z".into(),
        strategy: "rolling".into(),
        hosts: names(3),
        batches: vec![vec![1], vec![2]],
        pauses: vec![Vec::new(), Vec::new()],
        run_once_on: None,
        host: host.into(),
        from: Some(id(from)),
        done: done.to_vec(),
        updated: String::new(),
        pause: None,
        migration: None,
    }
}

#[test]
fn undoing_an_interrupted_change_moves_only_the_hosts_it_switched() {
    // web-1 already ran v3 (no journal: not part of the change); web-2
    // switched before the operator's process died; web-3 was prepared only.
    let h = [(Deploy, "v1"), (Deploy, "v2"), (Deploy, "v3")];
    let mut states = vec![
        on(Some("v3"), &["v1", "v2", "v3"], &h),
        on(Some("v3"), &["v2", "v3"], &h[..2]),
        on(Some("v2"), &["v2", "v3"], &h[..2]),
    ];
    states[1].journal = Some(journal("web-2", "v2", &[Step::Upload, Step::Switch]));
    states[2].journal = Some(journal("web-3", "v2", &[Step::Upload]));
    let plan = plan_rollback("production", &names(3), &states, None, &hooks(), true).unwrap();
    assert_eq!(plan.batches, [vec![1]]);
    assert_eq!(
        plan.hosts[0].skip.as_deref(),
        Some("not part of the interrupted change")
    );
    assert_eq!(plan.hosts[1].to, Some(id("v2")));
    assert_eq!(plan.hosts[2].skip.as_deref(), Some("already runs v2"));
}
