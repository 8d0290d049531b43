//! Planning is pure: strategy + hosts + what each host runs → ordered batches
//! of steps. `shipdeck plan` prints exactly what `deploy` will then execute.

use super::canary::PauseKind;
use super::events::{ChangeKind, Step};
use super::history::previous_release;
use super::strategy::{Traffic, publish_steps, rollout};
use crate::config::Hooks;
use crate::host::HostState;
use crate::model::{ReleaseId, Strategy};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HostPlan {
    pub host: usize,
    pub name: String,
    pub from: Option<ReleaseId>,
    pub to: Option<ReleaseId>,
    /// Why this host is left alone, if it is.
    pub skip: Option<String>,
    /// Steps before the switch, run on every host before any host switches.
    pub prepare: Vec<Step>,
    /// Steps from the switch on, run batch by batch.
    pub publish: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Plan {
    pub env: String,
    pub kind: ChangeKind,
    pub release: Option<ReleaseId>,
    pub strategy: String,
    pub hosts: Vec<HostPlan>,
    /// Indices into `hosts`, in order; skipped hosts are in no batch. A
    /// canary stage that only pauses has an empty batch.
    pub batches: Vec<Vec<usize>>,
    /// The pauses after each batch (canary only; empty otherwise).
    #[serde(serialize_with = "pauses_as_written")]
    pub pauses: Vec<Vec<PauseKind>>,
    /// The host `run_once` hooks run on, before any host switches.
    pub run_once_on: Option<usize>,
    /// Failed hosts tolerated before the change stops and reverts.
    pub max_failures: usize,
}

impl Plan {
    pub fn active(&self) -> impl Iterator<Item = &HostPlan> {
        self.hosts.iter().filter(|h| h.skip.is_none())
    }

    pub fn is_empty(&self) -> bool {
        self.active().next().is_none()
    }
}

/// What the engine knows about the change before planning it.
pub struct DeployInput<'a> {
    pub env: &'a str,
    pub kind: ChangeKind,
    pub strategy: &'a Strategy,
    pub names: &'a [String],
    pub states: &'a [HostState],
    pub release: &'a ReleaseId,
    pub sha256: &'a str,
    pub hooks: &'a Hooks,
    pub has_health: bool,
    pub has_shared: bool,
}

pub fn plan_deploy(input: &DeployInput<'_>) -> Plan {
    let mut hosts = Vec::new();
    for (i, (name, state)) in input.names.iter().zip(input.states).enumerate() {
        let from = state.current();
        let skip = (from.as_ref() == Some(input.release)
            && state.has_verified(input.release, input.sha256))
        .then(|| format!("already runs {}", input.release));
        let mut prepare = Vec::new();
        if !state.has_verified(input.release, input.sha256) {
            prepare.push(Step::Upload);
        }
        if input.has_shared {
            prepare.push(Step::Link);
        }
        if !input.hooks.before_switch.is_empty() {
            prepare.push(Step::BeforeSwitch);
        }
        let publish = publish_steps(
            rollout(input.strategy).traffic(),
            input.hooks,
            input.has_health,
            true,
        );
        hosts.push(HostPlan {
            host: i,
            name: name.clone(),
            from,
            to: Some(input.release.clone()),
            skip,
            prepare,
            publish,
        });
    }
    let active: Vec<usize> = hosts
        .iter()
        .filter(|h| h.skip.is_none())
        .map(|h| h.host)
        .collect();
    let run_once_on = (!input.hooks.run_once.is_empty())
        .then(|| active.first().copied())
        .flatten();
    if let Some(h) = run_once_on {
        hosts[h].prepare.push(Step::RunOnce);
    }
    let (batches, pauses, max_failures) = if active.is_empty() {
        (Vec::new(), Vec::new(), 0)
    } else {
        rollout(input.strategy).batches(&active, input.names.len())
    };
    Plan {
        env: input.env.to_owned(),
        kind: input.kind,
        release: Some(input.release.clone()),
        strategy: input.strategy.to_string(),
        hosts,
        batches,
        pauses,
        run_once_on,
        max_failures,
    }
}

fn pauses_as_written<S: serde::Serializer>(
    pauses: &[Vec<PauseKind>],
    s: S,
) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&super::journal::Journal::write_pauses(pauses), s)
}

/// Why a rollback cannot start; nothing has been changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RollbackRefusal {
    #[error("nothing to roll back to on {}: their history names no release before the current one (use --to RELEASE)", .0.join(", "))]
    NoPrevious(Vec<String>),
    #[error("{release} is not on disk on {}: cannot roll back there", .hosts.join(", "))]
    Missing {
        release: ReleaseId,
        hosts: Vec<String>,
    },
    #[error("{} run no release yet: nothing to roll back", .0.join(", "))]
    NothingDeployed(Vec<String>),
    /// By their own histories, the hosts would go back to different
    /// releases: rolling back would leave the environment mixed.
    #[error("its hosts would go back to different releases, which would leave it mixed:\n  {}\n  name the one to go to with --to RELEASE", .0.join("\n  "))]
    Disagree(Vec<String>),
}

/// Rollback switches every host at once: at 3 a.m. the way back should take
/// one round trip, whatever the strategy the change went out with.
pub fn plan_rollback(
    env: &str,
    names: &[String],
    states: &[HostState],
    to: Option<&ReleaseId>,
    hooks: &Hooks,
    has_health: bool,
) -> Result<Plan, RollbackRefusal> {
    plan_rollback_of(env, names, states, to, hooks, has_health, &[])
}

/// How a plan names a host a rollback left out because it did not answer.
pub const LEFT_OUT: &str = "LEFT OUT, unreachable";

/// As [`plan_rollback`], leaving out the hosts in `left_out` (unreachable,
/// with why): they keep what they run, and decide nothing.
pub fn plan_rollback_of(
    env: &str,
    names: &[String],
    states: &[HostState],
    to: Option<&ReleaseId>,
    hooks: &Hooks,
    has_health: bool,
    left_out: &[(usize, String)],
) -> Result<Plan, RollbackRefusal> {
    // Undoing an interrupted change touches only the hosts it changed.
    let undoing = to.is_none() && states.iter().any(|s| s.journal.is_some());
    let publish = publish_steps(Traffic::Symlink, hooks, has_health, false);
    let mut hosts: Vec<HostPlan> = names
        .iter()
        .zip(states)
        .enumerate()
        .map(
            |(i, (name, state))| match left_out.iter().find(|(h, _)| *h == i) {
                Some((_, why)) => HostPlan {
                    host: i,
                    name: name.clone(),
                    from: None,
                    to: None,
                    skip: Some(format!("{LEFT_OUT}: {why}")),
                    prepare: Vec::new(),
                    publish: Vec::new(),
                },
                None => rollback_host(i, name, state, to, undoing, &publish),
            },
        )
        .collect();
    refuse_rollback(&hosts, states, to, undoing, left_out)?;
    // A host with no current release and no target stays as it is.
    for h in hosts.iter_mut().filter(|h| h.to.is_none()) {
        h.skip = Some("runs no release".into());
    }
    let active: Vec<usize> = hosts
        .iter()
        .filter(|h| h.skip.is_none())
        .map(|h| h.host)
        .collect();
    let release = match to {
        Some(t) => Some(t.clone()),
        None => {
            let mut targets: Vec<&ReleaseId> = hosts.iter().filter_map(|h| h.to.as_ref()).collect();
            targets.dedup();
            (targets.len() == 1).then(|| targets[0].clone())
        }
    };
    let (pauses, batches) = if active.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        (vec![Vec::new()], vec![active])
    };
    Ok(Plan {
        env: env.to_owned(),
        kind: ChangeKind::Rollback,
        release,
        strategy: Strategy::AllAtOnce.to_string(),
        hosts,
        pauses,
        batches,
        run_once_on: None,
        max_failures: 0,
    })
}

/// Where one host that answered goes back to, and whether it is skipped.
/// A rollback is all at once, whatever the strategy: every host publishes
/// with `publish`.
fn rollback_host(
    i: usize,
    name: &str,
    state: &HostState,
    to: Option<&ReleaseId>,
    undoing: bool,
    publish: &[Step],
) -> HostPlan {
    let from = state.current();
    let mut untouched = None;
    // A rollback that was interrupted is finished, never undone: undoing
    // it would go forward into the release it was leaving.
    let mid_rollback = state
        .journal
        .as_ref()
        .is_some_and(|j| j.kind == ChangeKind::Rollback && !j.has_done(Step::Record));
    let target = match (to, &state.journal) {
        (Some(t), _) => Some(t.clone()),
        (None, Some(j)) if j.kind == ChangeKind::Rollback => Some(j.release.clone()),
        // Each host goes back to what it ran before that change, and a
        // host it never switched stays.
        (None, Some(j)) => j.from.clone(),
        (None, None) if undoing => {
            untouched = Some("not part of the interrupted change".to_owned());
            from.clone()
        }
        (None, None) => previous_release(&state.history, from.as_ref()),
    };
    // A host an interrupted rollback switched but did not record yet is
    // gated and recorded now.
    let skip = untouched.or_else(|| {
        (from.is_some() && from == target && !mid_rollback).then(|| {
            format!(
                "already runs {}",
                from.as_ref().map(ToString::to_string).unwrap_or_default()
            )
        })
    });
    HostPlan {
        host: i,
        name: name.to_owned(),
        from,
        to: target,
        skip,
        prepare: Vec::new(),
        publish: publish.to_vec(),
    }
}

/// Why the rollback planned in `hosts` must not run: a target missing on a
/// host, a host with nowhere to go back to, nothing deployed anywhere, or
/// hosts whose own histories go back to different releases.
fn refuse_rollback(
    hosts: &[HostPlan],
    states: &[HostState],
    to: Option<&ReleaseId>,
    undoing: bool,
    left_out: &[(usize, String)],
) -> Result<(), RollbackRefusal> {
    let answered = || {
        hosts
            .iter()
            .zip(states)
            .filter(|(h, _)| !left_out.iter().any(|(i, _)| *i == h.host))
    };
    let missing: Vec<String> = answered()
        .filter(|(h, s)| h.to.as_ref().is_some_and(|t| !s.has_release(t)))
        .map(|(h, _)| h.name.clone())
        .collect();
    if !missing.is_empty() {
        let release = to
            .cloned()
            .or_else(|| hosts.iter().find_map(|h| h.to.clone()))
            .expect("a host is missing a target, so there is one");
        return Err(RollbackRefusal::Missing {
            release,
            hosts: missing,
        });
    }
    let no_previous: Vec<String> = answered()
        .filter(|(h, _)| h.from.is_some() && h.to.is_none())
        .map(|(h, _)| h.name.clone())
        .collect();
    if !no_previous.is_empty() {
        return Err(RollbackRefusal::NoPrevious(no_previous));
    }
    let nothing: Vec<String> = answered()
        .filter(|(h, _)| h.from.is_none() && h.to.is_none())
        .map(|(h, _)| h.name.clone())
        .collect();
    if nothing.len() + left_out.len() == hosts.len() {
        return Err(RollbackRefusal::NothingDeployed(nothing));
    }
    let going: Vec<&HostPlan> = hosts.iter().filter(|h| h.skip.is_none()).collect();
    let targets: std::collections::BTreeSet<&ReleaseId> =
        going.iter().filter_map(|h| h.to.as_ref()).collect();
    if to.is_none() && !undoing && targets.len() > 1 {
        let name = |r: Option<&ReleaseId>| r.map_or("nothing".into(), ToString::to_string);
        return Err(RollbackRefusal::Disagree(
            going
                .iter()
                .map(|h| {
                    format!(
                        "{}: runs {}, its history goes back to {}",
                        h.name,
                        name(h.from.as_ref()),
                        name(h.to.as_ref())
                    )
                })
                .collect(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
