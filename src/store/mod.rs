//! The local release store: `.shipdeck/releases/<id>.tar.gz` beside the config,
//! each with a `<id>.json` manifest.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::model::ReleaseId;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub id: ReleaseId,
    pub app: String,
    pub sha256: String,
    /// Size of the packed artifact, in bytes.
    pub size: u64,
    /// RFC 3339, UTC.
    pub created_at: String,
    #[serde(default)]
    pub git_commit: Option<String>,
    #[serde(default)]
    pub notes: Option<String>,
}

#[derive(Debug, Clone)]
pub struct LocalRelease {
    pub manifest: Manifest,
    pub tarball: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("release {0} is not in the local store ({1}); build it with `shipdeck build --id {0}`")]
    NotFound(ReleaseId, String),
    #[error("release {0} already exists in the local store; pick another id")]
    Exists(ReleaseId),
    #[error("the build command `{command}` failed ({status})")]
    Build { command: String, status: String },
    #[error("artifact folder {0} does not exist (app.artifact)")]
    NoArtifact(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("{path}: bad manifest: {source}")]
    Manifest {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{0}")]
    Corrupt(String),
    #[error(
        "{tarball} changed after `shipdeck build`: its sha256 is {found}, its manifest says {manifest}\n  nothing was locked or changed on any host; build a new release from the artifact folder (`shipdeck build --id ID`) instead of shipping {id}"
    )]
    Changed {
        tarball: String,
        found: String,
        manifest: String,
        id: ReleaseId,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
    config_dir: PathBuf,
    app: String,
    artifact: PathBuf,
    build: Option<String>,
}

impl Store {
    pub fn new(cfg: &Config) -> Self {
        Store {
            dir: cfg.dir.join(".shipdeck/releases"),
            config_dir: cfg.dir.clone(),
            app: cfg.app.name.clone(),
            artifact: cfg.app.artifact.clone(),
            build: cfg.app.build.clone(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn tarball(&self, id: &ReleaseId) -> PathBuf {
        self.dir.join(format!("{id}.tar.gz"))
    }

    fn manifest_path(&self, id: &ReleaseId) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    pub fn get(&self, id: &ReleaseId) -> Result<LocalRelease, StoreError> {
        let path = self.manifest_path(id);
        let tarball = self.tarball(id);
        if !path.exists() || !tarball.exists() {
            return Err(StoreError::NotFound(
                id.clone(),
                self.dir.display().to_string(),
            ));
        }
        let text = fs::read_to_string(&path).map_err(io_err(&path))?;
        let manifest: Manifest =
            serde_json::from_str(&text).map_err(|source| StoreError::Manifest {
                path: path.display().to_string(),
                source,
            })?;
        if &manifest.id != id {
            return Err(StoreError::Corrupt(format!(
                "{} names release {}",
                path.display(),
                manifest.id
            )));
        }
        Ok(LocalRelease { manifest, tarball })
    }

    /// [`Store::get`], and the tarball's sha256 checked against its manifest:
    /// what a change ships, checked before it connects to any host.
    pub fn get_verified(&self, id: &ReleaseId) -> Result<LocalRelease, StoreError> {
        let release = self.get(id)?;
        let (sha256, _) = sha256_file(&release.tarball)?;
        if sha256 != release.manifest.sha256 {
            return Err(StoreError::Changed {
                tarball: release.tarball.display().to_string(),
                found: sha256,
                manifest: release.manifest.sha256.clone(),
                id: id.clone(),
            });
        }
        Ok(release)
    }

    /// Every release in the store, oldest first.
    pub fn list(&self) -> Result<Vec<LocalRelease>, StoreError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&self.dir)(e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let path = entry.map_err(io_err(&self.dir))?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let Some(id) = name
                .strip_suffix(".json")
                .and_then(|s| ReleaseId::parse(s).ok())
            else {
                continue;
            };
            out.push(self.get(&id)?);
        }
        out.sort_by(|a, b| {
            (&a.manifest.created_at, &a.manifest.id).cmp(&(&b.manifest.created_at, &b.manifest.id))
        });
        Ok(out)
    }

    /// Run the build command (if any), pack the artifact folder, and record it.
    pub fn build(
        &self,
        id: Option<ReleaseId>,
        notes: Option<String>,
    ) -> Result<LocalRelease, StoreError> {
        let id = id.unwrap_or_else(default_id);
        if self.manifest_path(&id).exists() || self.tarball(&id).exists() {
            return Err(StoreError::Exists(id));
        }
        if let Some(cmd) = &self.build {
            let status = Command::new("sh")
                .arg("-c")
                .arg(cmd)
                .current_dir(&self.config_dir)
                .env("SHIPDECK_RELEASE", id.as_str())
                .status()
                .map_err(io_err(&self.config_dir))?;
            if !status.success() {
                return Err(StoreError::Build {
                    command: cmd.clone(),
                    status: status.to_string(),
                });
            }
        }
        if !self.artifact.is_dir() {
            return Err(StoreError::NoArtifact(self.artifact.display().to_string()));
        }
        fs::create_dir_all(&self.dir).map_err(io_err(&self.dir))?;
        let tarball = self.tarball(&id);
        let part = self.dir.join(format!(".{id}.tar.gz.part"));
        let now = std::time::SystemTime::now();
        let mtime = now
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if let Err(e) = pack(&self.artifact, &part, mtime) {
            let _ = fs::remove_file(&part);
            return Err(e);
        }
        let (sha256, size) = sha256_file(&part)?;
        fs::rename(&part, &tarball).map_err(io_err(&tarball))?;
        let manifest = Manifest {
            id: id.clone(),
            app: self.app.clone(),
            sha256,
            size,
            created_at: crate::model::time::rfc3339(now),
            git_commit: git_commit(&self.config_dir),
            notes,
        };
        let path = self.manifest_path(&id);
        let json = serde_json::to_string_pretty(&manifest).expect("a manifest serializes");
        fs::write(&path, json + "\n").map_err(io_err(&path))?;
        Ok(LocalRelease { manifest, tarball })
    }
}

/// A Capistrano-style id: the UTC time, to the second.
fn default_id() -> ReleaseId {
    let s = crate::model::time::utc_format(std::time::SystemTime::now(), "%Y%m%d%H%M%S");
    ReleaseId::parse(&s).expect("digits are a valid id")
}

/// Pack `dir`'s contents (not the folder itself) into a gzipped tar that
/// depends only on the tree and `mtime`: names sorted, owner 0:0 with no user
/// or group names, every mtime `mtime` (the manifest's time), modes kept. A
/// symlink that is absolute or climbs out of the artifact is refused: on the
/// host it would point at whatever that path holds there.
fn pack(dir: &Path, out: &Path, mtime: u64) -> Result<(), StoreError> {
    let file = File::create(out).map_err(io_err(out))?;
    let gz = flate2::write::GzEncoder::new(BufWriter::new(file), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    tar.follow_symlinks(false);
    // Every path first, then in sorted order: `b`, `bin`, `bin/run`, `version`.
    let mut paths = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let abs = dir.join(&rel);
        for entry in fs::read_dir(&abs).map_err(io_err(&abs))? {
            let entry = entry.map_err(io_err(&abs))?;
            let child = rel.join(entry.file_name());
            let meta = fs::symlink_metadata(dir.join(&child)).map_err(io_err(&abs))?;
            if meta.is_dir() {
                stack.push(child.clone());
            }
            paths.push((child, meta));
        }
    }
    paths.sort_by(|a, b| a.0.cmp(&b.0));
    for (child, meta) in paths {
        let path = dir.join(&child);
        let mut header = tar::Header::new_gnu();
        header.set_metadata_in_mode(&meta, tar::HeaderMode::Deterministic);
        header.set_mtime(mtime);
        if meta.is_dir() {
            tar.append_data(&mut header, &child, io::empty())
                .map_err(io_err(&path))?;
        } else if meta.file_type().is_symlink() {
            let target = fs::read_link(&path).map_err(io_err(&path))?;
            if !stays_inside(&child, &target) {
                return Err(StoreError::Corrupt(format!(
                    "{}: a link to {} points outside the artifact folder; shipdeck refuses it (copy what it names into the artifact, or link inside it)",
                    path.display(),
                    target.display()
                )));
            }
            tar.append_link(&mut header, &child, &target)
                .map_err(io_err(&path))?;
        } else {
            let f = File::open(&path).map_err(io_err(&path))?;
            tar.append_data(&mut header, &child, f)
                .map_err(io_err(&path))?;
        }
    }
    let gz = tar.into_inner().map_err(io_err(out))?;
    let mut w = gz.finish().map_err(io_err(out))?;
    w.flush().map_err(io_err(out))?;
    Ok(())
}

/// Whether a link at `link` (relative to the artifact's root) naming
/// `target` resolves inside the artifact, by its path alone.
fn stays_inside(link: &Path, target: &Path) -> bool {
    use std::path::Component;
    if target.is_absolute() {
        return false;
    }
    let mut depth = link.components().count().saturating_sub(1);
    for c in target.components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return false,
            },
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

pub fn sha256_file(path: &Path) -> Result<(String, u64), StoreError> {
    let mut r = BufReader::new(File::open(path).map_err(io_err(path))?);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = r.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((hex::encode(hasher.finalize()), size))
}

fn git_commit(dir: &Path) -> Option<String> {
    let out = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(dir)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(root: &Path) {
        fs::create_dir_all(root.join("bin")).unwrap();
        fs::write(root.join("version"), "v1\n").unwrap();
        fs::write(root.join("bin/run"), "#!/bin/sh\n").unwrap();
        fs::write(root.join("b"), "b").unwrap();
        std::os::unix::fs::symlink("../version", root.join("bin/version")).unwrap();
    }

    fn entries(tarball: &Path) -> Vec<(String, u64, u64, u64)> {
        let gz = flate2::read::GzDecoder::new(File::open(tarball).unwrap());
        let mut a = tar::Archive::new(gz);
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().display().to_string(),
                    h.uid().unwrap(),
                    h.gid().unwrap(),
                    h.mtime().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn the_same_tree_packs_to_the_same_bytes_owned_by_root_at_the_manifest_time() {
        let d = tempfile::tempdir().unwrap();
        let (one, two) = (d.path().join("one"), d.path().join("two"));
        tree(&one);
        // Other mtimes, made in another order: the tarball does not change.
        fs::create_dir_all(two.join("bin")).unwrap();
        fs::write(two.join("b"), "b").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        tree(&two);
        let (a, b) = (d.path().join("a.tar.gz"), d.path().join("b.tar.gz"));
        pack(&one, &a, 1_700_000_000).unwrap();
        pack(&two, &b, 1_700_000_000).unwrap();
        assert_eq!(fs::read(&a).unwrap(), fs::read(&b).unwrap());
        let got = entries(&a);
        let names: Vec<&str> = got.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(names, ["b", "bin", "bin/run", "bin/version", "version"]);
        assert!(
            got.iter().all(|e| (e.1, e.2, e.3) == (0, 0, 1_700_000_000)),
            "{got:?}"
        );
    }

    #[test]
    fn a_link_out_of_the_artifact_is_refused() {
        for target in ["/etc/passwd", "../../outside", "../bin/../../x"] {
            let d = tempfile::tempdir().unwrap();
            let root = d.path().join("dist");
            fs::create_dir_all(root.join("bin")).unwrap();
            std::os::unix::fs::symlink(target, root.join("bin/link")).unwrap();
            let e = pack(&root, &d.path().join("x.tar.gz"), 0)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("points outside the artifact folder"),
                "{target}: {e}"
            );
        }
        assert!(stays_inside(Path::new("bin/link"), Path::new("../version")));
        assert!(stays_inside(Path::new("a/b/l"), Path::new("../../c/./d")));
    }
}
