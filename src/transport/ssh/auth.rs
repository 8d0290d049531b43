//! Authenticating a session in OpenSSH's order: the configured keys the
//! agent holds, then the agent's other keys (not with `IdentitiesOnly`),
//! then the configured key files themselves, an encrypted one with its
//! passphrase. With no key configured, the default `~/.ssh/id_*` files are
//! the configured ones.

use super::keys::{self, KeyFile};
use super::*;

/// sshd's default `MaxAuthTries`: it stops listening after that many keys.
const MAX_AUTH_TRIES: usize = 6;
const MAX_AUTH_HINT: &str = "sshd stops after MaxAuthTries keys (6 by default): set `IdentitiesOnly yes` and the right IdentityFile in ssh_config, or identity and identities_only = true in [ssh]";

/// OpenSSH's default identity files, in its order.
const DEFAULT_KEYS: &[&str] = &["id_rsa", "id_ecdsa", "id_ed25519"];

/// One key offered, and what became of it.
enum Offer {
    Accepted,
    Refused,
}

struct Attempts {
    tried: Vec<String>,
    timeout: Duration,
}

struct AgentKeys<'a> {
    agent: &'a ssh2::Agent,
    identities: &'a [ssh2::PublicKey],
    files: &'a [KeyFile],
}

impl SshTransport {
    pub(super) fn authenticate(
        &self,
        target: &SshTarget,
        timeout: Duration,
    ) -> Result<(), TransportError> {
        let user = target.user.as_str();
        let (files, mut notes) = key_files(target);
        let mut attempts = Attempts {
            tried: Vec::new(),
            timeout,
        };
        let mut used_from_agent = vec![false; files.len()];
        if let Some((agent, identities)) = self.agent_identities(&mut notes) {
            let by_agent = AgentKeys {
                agent: &agent,
                identities: &identities,
                files: &files,
            };
            if self.try_agent(target, &by_agent, &mut used_from_agent, &mut attempts)? {
                return Ok(());
            }
        }
        let rest = files
            .iter()
            .zip(&used_from_agent)
            .filter(|(_, used)| !**used)
            .map(|(f, _)| f);
        for file in rest {
            if self.try_file(user, file, &mut attempts)? {
                return Ok(());
            }
        }
        let offered = attempts.tried.len();
        let mut tried = attempts.tried;
        tried.extend(notes);
        if tried.is_empty() {
            tried.push("no key: none configured, no ~/.ssh/id_* file, no ssh-agent".into());
        }
        let mut reason = format!("tried {}", tried.join("; "));
        if offered >= MAX_AUTH_TRIES {
            reason.push_str(&format!(
                "\n  {MAX_AUTH_HINT}, so the keys after the first {MAX_AUTH_TRIES} may never have been looked at"
            ));
        }
        Err(TransportError::Auth {
            host: self.name.clone(),
            user: user.to_owned(),
            reason,
        })
    }

    /// The agent's copies of the configured keys first, then (without
    /// `IdentitiesOnly`) its other keys. Marks the files the agent stood in for.
    fn try_agent(
        &self,
        target: &SshTarget,
        keys: &AgentKeys<'_>,
        used: &mut [bool],
        attempts: &mut Attempts,
    ) -> Result<bool, TransportError> {
        let mut order: Vec<(&ssh2::PublicKey, Option<usize>)> = keys
            .identities
            .iter()
            .map(|id| {
                let file = keys
                    .files
                    .iter()
                    .position(|f| f.public.as_deref() == Some(id.blob()));
                (id, file)
            })
            .collect();
        order.sort_by_key(|(_, file)| file.is_none());
        for (identity, file) in order {
            if file.is_none() && target.identities_only {
                continue;
            }
            let label = match file {
                Some(i) => {
                    used[i] = true;
                    format!("{} (from ssh-agent)", keys.files[i].path.display())
                }
                None => format!(
                    "agent key {} {}",
                    known_hosts::fingerprint_sha256(identity.blob()),
                    identity.comment()
                ),
            };
            let result = keys.agent.userauth(&target.user, identity);
            if let Offer::Accepted = self.offer(attempts, label, result)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// A key file itself, with its passphrase when it is encrypted.
    fn try_file(
        &self,
        user: &str,
        file: &KeyFile,
        attempts: &mut Attempts,
    ) -> Result<bool, TransportError> {
        let label = file.path.display().to_string();
        let passphrase = if file.encrypted {
            match keys::passphrase(&file.path) {
                Ok(p) => Some(p),
                Err(why) => {
                    attempts.tried.push(format!("{label}: {why}"));
                    return Ok(false);
                }
            }
        } else {
            None
        };
        let result = self
            .session
            .userauth_pubkey_file(user, None, &file.path, passphrase.as_deref())
            .map_err(|e| {
                if file.encrypted && ssh_code(&e) == ERR_FILE {
                    ssh2::Error::new(e.code(), "wrong passphrase")
                } else {
                    e
                }
            });
        Ok(matches!(
            self.offer(attempts, label, result)?,
            Offer::Accepted
        ))
    }

    /// Offer one key; a closed connection or a timeout ends authentication.
    fn offer(
        &self,
        attempts: &mut Attempts,
        label: String,
        result: Result<(), ssh2::Error>,
    ) -> Result<Offer, TransportError> {
        let timeout = attempts.timeout;
        let e = match result {
            Ok(()) => return Ok(Offer::Accepted),
            Err(e) => e,
        };
        let code = ssh_code(&e);
        if is_timeout(code) {
            return Err(TransportError::Connect {
                host: self.name.clone(),
                reason: format!("authentication did not finish within {timeout:?}"),
            });
        }
        if is_disconnect(code) {
            attempts.tried.push(format!("{label}: the server hung up"));
            return Err(TransportError::Connect {
                host: self.name.clone(),
                reason: format!(
                    "the server closed the connection during authentication after {} key(s); {MAX_AUTH_HINT}; tried {}",
                    attempts.tried.len(),
                    attempts.tried.join("; ")
                ),
            });
        }
        let why = match code {
            ERR_PUBKEY_UNVERIFIED | ERR_AUTH_FAILED => "refused by the server".to_owned(),
            _ => e.message().to_owned(),
        };
        attempts.tried.push(format!("{label}: {why}"));
        Ok(Offer::Refused)
    }

    /// The agent and its keys, when one answers on `SSH_AUTH_SOCK`.
    fn agent_identities(
        &self,
        notes: &mut Vec<String>,
    ) -> Option<(ssh2::Agent, Vec<ssh2::PublicKey>)> {
        if std::env::var_os("SSH_AUTH_SOCK").is_none() {
            notes.push("no ssh-agent (SSH_AUTH_SOCK is not set)".into());
            return None;
        }
        let listed = (|| {
            let mut agent = self.session.agent()?;
            agent.connect()?;
            agent.list_identities()?;
            let identities = agent.identities()?;
            Ok::<_, ssh2::Error>((agent, identities))
        })();
        match listed {
            Ok((agent, ids)) if ids.is_empty() => {
                let _ = agent;
                notes.push("ssh-agent holds no keys".into());
                None
            }
            Ok(found) => Some(found),
            Err(e) => {
                notes.push(format!("ssh-agent did not answer: {}", e.message()));
                None
            }
        }
    }
}

/// The configured key files (or the default ones that exist), read; and a
/// note for each configured one that cannot be read.
fn key_files(target: &SshTarget) -> (Vec<KeyFile>, Vec<String>) {
    let mut notes = Vec::new();
    let configured = !target.identities.is_empty();
    let paths: Vec<PathBuf> = if configured {
        target.identities.clone()
    } else {
        let dir = dirs::home_dir().map(|h| h.join(".ssh"));
        DEFAULT_KEYS
            .iter()
            .filter_map(|k| dir.as_ref().map(|d| d.join(k)))
            .filter(|p| p.is_file())
            .collect()
    };
    let mut files = Vec::new();
    for path in paths {
        match keys::read_key_file(&path) {
            Ok(f) => files.push(f),
            Err(e) => notes.push(format!("{}: cannot read it: {e}", path.display())),
        }
    }
    (files, notes)
}

// libssh2 error codes met during authentication.
const ERR_FILE: i32 = -16;
const ERR_PUBKEY_UNVERIFIED: i32 = -19;
const ERR_AUTH_FAILED: i32 = -18;
