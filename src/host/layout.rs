//! Where things are under `deploy_to` (DESIGN §2, Capistrano-compatible).

use crate::model::ReleaseId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    root: String,
}

impl Layout {
    pub fn new(deploy_to: &str) -> Self {
        Layout {
            root: deploy_to.to_owned(),
        }
    }

    pub fn root(&self) -> &str {
        &self.root
    }

    fn join(&self, rest: &str) -> String {
        if self.root == "/" {
            format!("/{rest}")
        } else {
            format!("{}/{rest}", self.root)
        }
    }

    pub fn releases(&self) -> String {
        self.join("releases")
    }

    pub fn release(&self, id: &ReleaseId) -> String {
        self.join(&format!("releases/{id}"))
    }

    pub fn current(&self) -> String {
        self.join("current")
    }

    pub fn shared(&self) -> String {
        self.join("shared")
    }

    pub fn shared_path(&self, rel: &str) -> String {
        self.join(&format!("shared/{rel}"))
    }

    pub fn meta(&self) -> String {
        self.join(".shipdeck")
    }

    pub fn lock(&self) -> String {
        self.join(".shipdeck/lock")
    }

    /// The link of a blue/green slot (`slots/blue`), to the release it runs.
    pub fn slot(&self, slot: crate::model::Slot) -> String {
        self.join(&format!("slots/{slot}"))
    }

    /// Which slot takes traffic.
    pub fn live_slot(&self) -> String {
        self.join(".shipdeck/slot")
    }

    /// A blue/green change switched, its old slot still running.
    pub fn pending_finish(&self) -> String {
        self.join(".shipdeck/finish.json")
    }

    /// The journal of the change in progress.
    pub fn journal(&self) -> String {
        self.join(".shipdeck/change.json")
    }

    /// A word for a paused change from any machine (`continue`, `abort`).
    pub fn signal(&self) -> String {
        self.join(".shipdeck/signal")
    }

    pub fn lock_owner(&self) -> String {
        self.join(".shipdeck/lock/owner.json")
    }

    pub fn history(&self) -> String {
        self.join(".shipdeck/history.jsonl")
    }

    pub fn uploads(&self) -> String {
        self.join(".shipdeck/uploads")
    }

    /// An upload in flight; renamed only after its sha256 checks out.
    pub fn upload_part(&self, id: &ReleaseId, nonce: &str) -> String {
        self.join(&format!(".shipdeck/uploads/{id}.tar.gz.{nonce}"))
    }

    /// Holds the sha256 of a release once it is unpacked and verified.
    pub fn verified(&self, id: &ReleaseId) -> String {
        self.join(&format!(".shipdeck/verified/{id}"))
    }

    pub fn verified_dir(&self) -> String {
        self.join(".shipdeck/verified")
    }
}
