//! Strategies as rooms: one file each, behind [`Rollout`]. A strategy decides
//! which hosts switch together, what pauses follow each batch, how many
//! failures a change tolerates, and how a host takes traffic; the executor in
//! `engine::change` walks what it decides.
//!
//! A new strategy is a file here (its `Rollout`), a variant of
//! `model::Strategy` with its label, its resolution in `config`, and its arm
//! in [`rollout`].

mod all_at_once;
pub mod blue_green;
mod canary;
mod rolling;

use super::canary::PauseKind;
use super::events::Step;
use crate::config::Hooks;
use crate::model::Strategy;

/// Batches of host indices in switch order, the pauses after each batch,
/// and the failures tolerated before the change goes back.
pub type Batches = (Vec<Vec<usize>>, Vec<Vec<PauseKind>>, usize);

/// How a host's traffic moves to the new release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Traffic {
    /// `current` is switched, then the app restarts and is gated.
    Symlink,
    /// The release starts and is gated on the idle slot, then `switch`
    /// moves traffic; going back is the switch back.
    Slots,
}

pub trait Rollout {
    /// `active` are the hosts taking part, in order; `total` counts every
    /// host of the environment (a percentage is of the environment).
    fn batches(&self, active: &[usize], total: usize) -> Batches;

    fn traffic(&self) -> Traffic {
        Traffic::Symlink
    }

    /// Hosts that may fail before the change goes back.
    fn max_failures(&self) -> usize {
        0
    }
}

pub fn rollout(strategy: &Strategy) -> Box<dyn Rollout + '_> {
    match strategy {
        Strategy::AllAtOnce => Box::new(all_at_once::AllAtOnce),
        Strategy::Rolling {
            batch,
            max_failures,
        } => Box::new(rolling::Rolling {
            batch: *batch,
            max_failures: *max_failures,
        }),
        Strategy::Canary { steps, .. } => Box::new(canary::Canary { steps }),
        Strategy::BlueGreen(_) => Box::new(blue_green::BlueGreenRollout),
    }
}

/// Batches with no pause after any of them.
fn unpaused(batches: Vec<Vec<usize>>, max_failures: usize) -> Batches {
    let pauses = vec![Vec::new(); batches.len()];
    (batches, pauses, max_failures)
}

/// The steps from the switch on, in the order the executor runs them.
pub fn publish_steps(
    traffic: Traffic,
    hooks: &Hooks,
    has_health: bool,
    after_switch: bool,
) -> Vec<Step> {
    let mut steps = Vec::new();
    match traffic {
        Traffic::Slots => {
            steps.push(Step::StartSlot);
            if has_health {
                steps.push(Step::Health);
            }
            steps.push(Step::Switch);
        }
        Traffic::Symlink => {
            steps.push(Step::Switch);
            if hooks.restart.is_some() {
                steps.push(Step::Restart);
            }
            if has_health {
                steps.push(Step::Health);
            }
        }
    }
    if after_switch && !hooks.after_switch.is_empty() {
        steps.push(Step::AfterSwitch);
    }
    steps.push(Step::Record);
    steps
}
