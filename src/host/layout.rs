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
