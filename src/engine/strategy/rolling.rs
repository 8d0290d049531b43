//! A batch of hosts at a time, with a number of failures tolerated.

use super::{Batches, Rollout, unpaused};
use crate::model::HostCount;

pub struct Rolling {
    pub batch: HostCount,
    pub max_failures: usize,
}

impl Rollout for Rolling {
    fn batches(&self, active: &[usize], total: usize) -> Batches {
        // A percentage is of the environment, not of the hosts left to do.
        let size = self.batch.of(total);
        unpaused(
            active.chunks(size).map(<[usize]>::to_vec).collect(),
            self.max_failures,
        )
    }

    fn max_failures(&self) -> usize {
        self.max_failures
    }
}
