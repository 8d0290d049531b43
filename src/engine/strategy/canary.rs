//! Canary: the steps move hosts and pause to judge them (the judge is
//! `model::canary`, the pauses `engine::pause`).

use super::{Batches, Rollout};
use crate::model::canary::{CanaryStep, moves};

pub struct Canary<'a> {
    pub steps: &'a [CanaryStep],
}

impl Rollout for Canary<'_> {
    fn batches(&self, active: &[usize], _total: usize) -> Batches {
        // Steps count the hosts that take part: hosts that already run the
        // release are neither canary nor baseline.
        let stages = moves(self.steps, active.len());
        let batches = stages
            .iter()
            .map(|s| active[s.hosts.clone()].to_vec())
            .collect();
        let pauses = stages.into_iter().map(|s| s.pauses).collect();
        (batches, pauses, 0)
    }
}
