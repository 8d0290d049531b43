//! Stopping work between steps: a change, a log follow, a probe loop.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Stops a change between steps. Waiting on it (health gate pauses) wakes up
/// at once when it is cancelled.
#[derive(Clone, Default)]
pub struct CancelToken(Arc<(Mutex<bool>, Condvar)>);

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn cancel(&self) {
        let (flag, cv) = &*self.0;
        *flag.lock().unwrap_or_else(|p| p.into_inner()) = true;
        cv.notify_all();
    }

    pub fn is_cancelled(&self) -> bool {
        *self.0.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sleep up to `d`; true if cancelled.
    pub fn wait(&self, d: Duration) -> bool {
        let (flag, cv) = &*self.0;
        let guard = flag.lock().unwrap_or_else(|p| p.into_inner());
        let (guard, _) = cv
            .wait_timeout_while(guard, d, |cancelled| !*cancelled)
            .unwrap_or_else(|p| p.into_inner());
        *guard
    }
}
