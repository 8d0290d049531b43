//! Private key files: their public half (to find them in the agent), whether
//! they are encrypted, and their passphrase, asked once per key per process.

use std::collections::HashMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// The passphrase for every encrypted key, for CI.
pub const PASSPHRASE_ENV: &str = "SHIPDECK_SSH_PASSPHRASE";

/// Given passphrases, by key file: every host behind the same key asks once.
/// The lock is held while asking, so parallel connections wait for one prompt.
static PASSPHRASES: Mutex<Option<HashMap<PathBuf, String>>> = Mutex::new(None);

/// Cleared while the console owns the terminal: a prompt would be drawn over.
static MAY_PROMPT: AtomicBool = AtomicBool::new(true);

/// Never ask for a passphrase on the terminal from now on.
pub fn forbid_prompt() {
    MAY_PROMPT.store(false, Ordering::Relaxed);
}

/// What a key file holds, as far as authentication needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFile {
    pub path: PathBuf,
    /// The public key blob, from `<file>.pub` or the private key's clear part.
    pub public: Option<Vec<u8>>,
    pub encrypted: bool,
}

pub fn read_key_file(path: &Path) -> std::io::Result<KeyFile> {
    let text = std::fs::read_to_string(path)?;
    let openssh = openssh_key(&text);
    let encrypted = match &openssh {
        Some((cipher, _)) => cipher != "none",
        None => text.contains("ENCRYPTED"),
    };
    let public = pub_file_blob(path).or(openssh.map(|(_, blob)| blob));
    Ok(KeyFile {
        path: path.to_owned(),
        public,
        encrypted,
    })
}

/// The blob of `<path>.pub`: `type base64 comment`.
fn pub_file_blob(path: &Path) -> Option<Vec<u8>> {
    let mut name = path.as_os_str().to_owned();
    name.push(".pub");
    let text = std::fs::read_to_string(PathBuf::from(name)).ok()?;
    let b64 = text.split_whitespace().nth(1)?;
    STANDARD.decode(b64).ok()
}

/// `openssh-key-v1`: the cipher name and the first public key, both stored
/// in the clear ahead of the (maybe encrypted) private part.
fn openssh_key(text: &str) -> Option<(String, Vec<u8>)> {
    const BEGIN: &str = "-----BEGIN OPENSSH PRIVATE KEY-----";
    const END: &str = "-----END OPENSSH PRIVATE KEY-----";
    let body = text.split(BEGIN).nth(1)?.split(END).next()?;
    let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    let raw = STANDARD.decode(b64).ok()?;
    let mut rest = raw.strip_prefix(b"openssh-key-v1\0")?;
    let mut string = || -> Option<Vec<u8>> {
        let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let value = rest.get(4..4 + len)?.to_vec();
        rest = &rest[4 + len..];
        Some(value)
    };
    let cipher = String::from_utf8(string()?).ok()?;
    let _kdf = string()?;
    let _kdf_options = string()?;
    let count = string_count(&mut rest)?;
    if count < 1 {
        return None;
    }
    let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    let public = rest.get(4..4 + len)?.to_vec();
    Some((cipher, public))
}

fn string_count(rest: &mut &[u8]) -> Option<u32> {
    let n = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?);
    *rest = &rest[4..];
    Some(n)
}

/// The passphrase of an encrypted key: `SHIPDECK_SSH_PASSPHRASE`, else the
/// `SSH_ASKPASS` program (when there is no terminal, or
/// `SSH_ASKPASS_REQUIRE=force`), else asked once on the terminal without
/// echo. `Err` says why none could be had.
pub fn passphrase(path: &Path) -> Result<String, String> {
    if let Ok(p) = std::env::var(PASSPHRASE_ENV) {
        return Ok(p);
    }
    let mut cache = PASSPHRASES.lock().unwrap_or_else(|p| p.into_inner());
    let cache = cache.get_or_insert_with(HashMap::new);
    if let Some(p) = cache.get(path) {
        return Ok(p.clone());
    }
    let prompt = format!("Enter passphrase for key '{}': ", path.display());
    let terminal = MAY_PROMPT.load(Ordering::Relaxed)
        && std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .is_ok();
    let askpass = std::env::var("SSH_ASKPASS").ok().filter(|a| !a.is_empty());
    let forced = std::env::var("SSH_ASKPASS_REQUIRE").is_ok_and(|v| v == "force" || v == "prefer");
    let given = match askpass {
        Some(program) if forced || !terminal => ask_program(&program, &prompt)?,
        _ if terminal => rpassword::prompt_password(&prompt)
            .map_err(|e| format!("cannot read the passphrase from the terminal: {e}"))?,
        _ => {
            return Err(format!(
                "it is encrypted and needs a passphrase: add it to ssh-agent (ssh-add {}), or set {PASSPHRASE_ENV} or SSH_ASKPASS",
                path.display()
            ));
        }
    };
    cache.insert(path.to_owned(), given.clone());
    Ok(given)
}

/// An askpass program prints the passphrase on its stdout.
fn ask_program(program: &str, prompt: &str) -> Result<String, String> {
    let mut child = Command::new(program)
        .arg(prompt)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot run SSH_ASKPASS {program}: {e}"))?;
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_string(&mut out);
    }
    let status = child
        .wait()
        .map_err(|e| format!("SSH_ASKPASS {program}: {e}"))?;
    if !status.success() {
        return Err(format!(
            "SSH_ASKPASS {program} gave no passphrase ({status})"
        ));
    }
    Ok(out.trim_end_matches(['\n', '\r']).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keygen(dir: &Path, name: &str, passphrase: &str) -> PathBuf {
        let path = dir.join(name);
        let status = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", passphrase, "-f"])
            .arg(&path)
            .status()
            .expect("ssh-keygen");
        assert!(status.success());
        path
    }

    #[test]
    fn public_half_of_plain_and_encrypted_keys() {
        let dir = tempfile::tempdir().unwrap();
        for (name, pass, encrypted) in [("plain", "", false), ("locked", "s3cret", true)] {
            let path = keygen(dir.path(), name, pass);
            let with_pub = read_key_file(&path).unwrap();
            assert_eq!(with_pub.encrypted, encrypted, "{name}");
            let public = with_pub.public.clone().expect("a public half");
            // Without the .pub, the private file's clear part gives the same key.
            std::fs::remove_file(dir.path().join(format!("{name}.pub"))).unwrap();
            let alone = read_key_file(&path).unwrap();
            assert_eq!(alone.public.as_ref(), Some(&public), "{name}");
            assert_eq!(alone.encrypted, encrypted);
            assert!(public.starts_with(b"\0\0\0\x0bssh-ed25519"));
        }
    }
}
