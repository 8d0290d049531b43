//! Authenticating a session: the configured key, else the agent, else the
//! default keys.

use super::*;

impl SshTransport {
    pub(super) fn authenticate(
        &self,
        user: &str,
        identity: Option<&Path>,
        timeout: Duration,
    ) -> Result<(), TransportError> {
        let mut tried: Vec<String> = Vec::new();
        let mut attempt = |label: String, result: Result<(), ssh2::Error>| match result {
            Ok(()) => Ok(true),
            Err(e) => {
                let code = ssh_code(&e);
                if is_timeout(code) {
                    return Err(TransportError::Connect {
                        host: self.name.clone(),
                        reason: format!("authentication did not finish within {timeout:?}"),
                    });
                }
                if is_disconnect(code) {
                    return Err(TransportError::Connect {
                        host: self.name.clone(),
                        reason: format!("connection closed during authentication: {}", e.message()),
                    });
                }
                tried.push(format!("{label} ({})", e.message()));
                Ok(false)
            }
        };
        if let Some(path) = identity {
            let result = self.session.userauth_pubkey_file(user, None, path, None);
            if attempt(format!("key {}", path.display()), result)? {
                return Ok(());
            }
        } else {
            if attempt("ssh-agent".into(), self.agent_auth(user))? {
                return Ok(());
            }
            let ssh_dir = dirs::home_dir().map(|h| h.join(".ssh"));
            for file in ["id_ed25519", "id_ecdsa", "id_rsa"] {
                let Some(path) = ssh_dir.as_ref().map(|d| d.join(file)) else {
                    break;
                };
                if !path.is_file() {
                    continue;
                }
                let result = self.session.userauth_pubkey_file(user, None, &path, None);
                if attempt(format!("key {}", path.display()), result)? {
                    return Ok(());
                }
            }
            if tried.len() == 1 {
                tried.push("no ~/.ssh/id_ed25519, id_ecdsa or id_rsa".into());
            }
        }
        Err(TransportError::Auth {
            host: self.name.clone(),
            user: user.to_owned(),
            reason: format!("tried {}", tried.join(", ")),
        })
    }

    /// Every agent identity in turn (`Session::userauth_agent` tries only the first).
    pub(super) fn agent_auth(&self, user: &str) -> Result<(), ssh2::Error> {
        let mut agent = self.session.agent()?;
        agent.connect()?;
        agent.list_identities()?;
        let identities = agent.identities()?;
        let mut last = ssh2::Error::new(ErrorCode::Session(-34), "no identities in the agent");
        for identity in &identities {
            match agent.userauth(user, identity) {
                Ok(()) => {
                    let _ = agent.disconnect();
                    return Ok(());
                }
                Err(e) if is_disconnect(ssh_code(&e)) || is_timeout(ssh_code(&e)) => return Err(e),
                Err(e) => last = e,
            }
        }
        let _ = agent.disconnect();
        Err(last)
    }
}
