//! Every host in one batch.

use super::{Batches, Rollout, unpaused};

pub struct AllAtOnce;

impl Rollout for AllAtOnce {
    fn batches(&self, active: &[usize], _total: usize) -> Batches {
        if active.is_empty() {
            return unpaused(Vec::new(), 0);
        }
        unpaused(vec![active.to_vec()], 0)
    }
}
