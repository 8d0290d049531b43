//! Opening a session: TCP with a timeout, the algorithms asked for first,
//! and the host key checked against known_hosts (or recorded, when allowed).

use super::*;

/// libssh2 host-key method names for a known_hosts key type. An RSA key is
/// used with any of its three signature methods, the SHA-2 ones preferred.
pub(super) fn hostkey_methods(key_type: &str) -> &'static [&'static str] {
    match key_type {
        "ssh-ed25519" => &["ssh-ed25519"],
        "ecdsa-sha2-nistp256" => &["ecdsa-sha2-nistp256"],
        "ecdsa-sha2-nistp384" => &["ecdsa-sha2-nistp384"],
        "ecdsa-sha2-nistp521" => &["ecdsa-sha2-nistp521"],
        "ssh-rsa" => &["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"],
        "ssh-dss" => &["ssh-dss"],
        _ => &[],
    }
}

/// Fallback name for a host key whose blob we could not read.
pub(super) fn host_key_type_name(kind: HostKeyType) -> &'static str {
    match kind {
        HostKeyType::Rsa => "ssh-rsa",
        HostKeyType::Dss => "ssh-dss",
        HostKeyType::Ecdsa256 => "ecdsa-sha2-nistp256",
        HostKeyType::Ecdsa384 => "ecdsa-sha2-nistp384",
        HostKeyType::Ecdsa521 => "ecdsa-sha2-nistp521",
        HostKeyType::Ed25519 => "ssh-ed25519",
        HostKeyType::Unknown => "unknown",
    }
}

/// Ask first for the key types known_hosts holds, so a host that also has
/// another type of key does not hand us one we cannot check; the other
/// supported methods follow so that a host that really changed its key type
/// still completes the handshake and is judged by the known_hosts check.
/// Host certificates are left out: we only check plain keys.
pub(super) fn set_hostkey_preference(session: &Session, known_types: &[String]) {
    let Ok(supported) = session.supported_algs(MethodType::HostKey) else {
        return;
    };
    let mut prefs: Vec<&str> = known_types
        .iter()
        .flat_map(|t| hostkey_methods(t).iter().copied())
        .filter(|m| supported.contains(m))
        .collect();
    if prefs.is_empty() {
        return;
    }
    for m in &supported {
        if !m.contains("-cert-") && !prefs.contains(m) {
            prefs.push(m);
        }
    }
    let prefs = prefs.join(",");
    if let Err(e) = session.method_pref(MethodType::HostKey, &prefs) {
        tracing::debug!(%prefs, error = %e, "could not set host key preference");
    }
}

/// Fast algorithms first, among those both sides support: curve25519 key
/// exchange costs a fraction of the (finite-field) Diffie-Hellman libssh2 may
/// otherwise pick, and AES-GCM needs no separate MAC pass over an upload.
pub(super) const PREFERRED: &[(MethodType, &[&str])] = &[
    (
        MethodType::Kex,
        &[
            "curve25519-sha256",
            "curve25519-sha256@libssh.org",
            "ecdh-sha2-nistp256",
        ],
    ),
    (
        MethodType::CryptCs,
        &["aes128-gcm@openssh.com", "aes128-ctr"],
    ),
    (
        MethodType::CryptSc,
        &["aes128-gcm@openssh.com", "aes128-ctr"],
    ),
];

pub(super) fn set_fast_preferences(session: &Session) {
    for (method, first) in PREFERRED {
        let Ok(supported) = session.supported_algs(*method) else {
            continue;
        };
        let mut prefs: Vec<&str> = first
            .iter()
            .copied()
            .filter(|m| supported.contains(m))
            .collect();
        let rest: Vec<&str> = supported
            .iter()
            .copied()
            .filter(|m| !first.contains(m))
            .collect();
        prefs.extend(rest);
        if let Err(e) = session.method_pref(*method, &prefs.join(",")) {
            tracing::debug!(prefs = %prefs.join(","), error = %e, "could not set method preference");
        }
    }
}

pub(super) fn tcp_connect(host: &str, port: u16, timeout: Duration) -> Result<TcpStream, String> {
    let addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?;
    let mut last = format!("{host} resolves to no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(stream) => return Ok(stream),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                last = format!("{addr}: no answer within {timeout:?}");
            }
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    Err(last)
}

pub(super) fn read_known_hosts(path: &Path) -> io::Result<String> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(e),
    }
}

/// Add one line to known_hosts. Other hosts' threads may be doing the same:
/// O_APPEND plus a single write of the whole line keeps lines whole, and the
/// file is never rewritten, so nothing another thread (or the operator) wrote
/// is lost.
pub(super) fn append_known_host(path: &Path, existing: &str, line: &str) -> io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    let mut text = String::with_capacity(line.len() + 2);
    // A hand-edited file may lack its final newline; do not glue onto its last line.
    if !existing.is_empty() && !existing.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(line);
    text.push('\n');
    let mut file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)?;
    let written = file.write(text.as_bytes())?;
    if written != text.len() {
        return Err(io::Error::other("short write"));
    }
    Ok(())
}

impl SshTransport {
    /// Open, verify and authenticate a session, through its bastions if it
    /// has any. `name` is the operator's label for the host; known_hosts is
    /// looked up by `target.host` and port.
    pub fn connect(
        name: &str,
        target: &SshTarget,
        settings: &SshSettings,
    ) -> Result<Self, TransportError> {
        let started = Instant::now();
        let timeout = target.connect_timeout.unwrap_or(settings.connect_timeout);
        let connect_error = |reason: String| TransportError::Connect {
            host: name.to_owned(),
            reason,
        };
        let mut transport = if target.jump.is_empty() {
            let tcp = tcp_connect(&target.host, target.port, timeout).map_err(connect_error)?;
            // libssh2 leaves Nagle on, which costs ~40 ms per round trip on a kept-open session.
            tcp.set_nodelay(true)
                .map_err(|e| connect_error(format!("cannot set TCP_NODELAY: {e}")))?;
            Self::establish(name, target, settings, tcp, timeout)?
        } else {
            let bastion = jump::bastion(&target.jump, settings)
                .map_err(|e| connect_error(format!("through its bastion: {e}")))?;
            let stream = bastion
                .open(&target.host, target.port, timeout)
                .map_err(connect_error)?;
            let mut t = Self::establish(name, target, settings, stream, timeout)?;
            t._via = Some(bastion);
            t
        };
        let keepalive = target.keepalive.unwrap_or(KEEPALIVE);
        // Keepalives go out while libssh2 waits in a blocking call, so a long
        // quiet command does not get its connection dropped by a NAT or firewall.
        transport
            .session
            .set_keepalive(true, keepalive.as_secs().min(u32::MAX as u64) as u32);
        transport.name = name.to_owned();
        tracing::debug!(host = %name, target = %target.route(), elapsed = ?started.elapsed(), "ssh connected");
        Ok(transport)
    }

    /// Handshake, host key check and authentication on an open stream.
    pub(super) fn establish(
        name: &str,
        target: &SshTarget,
        settings: &SshSettings,
        stream: impl std::os::fd::AsRawFd + 'static,
        timeout: Duration,
    ) -> Result<Self, TransportError> {
        let connect_error = |reason: String| TransportError::Connect {
            host: name.to_owned(),
            reason,
        };
        let known_hosts = target.known_hosts.as_ref().unwrap_or(&settings.known_hosts);
        let known = read_known_hosts(known_hosts)
            .map_err(|e| connect_error(format!("cannot read {}: {e}", known_hosts.display())))?;
        let mut session =
            Session::new().map_err(|e| connect_error(format!("cannot start libssh2: {e}")))?;
        session.set_timeout(millis(timeout));
        let known_types = known_hosts::key_types_for(&known, &target.host, target.port);
        if !known_types.is_empty() {
            set_hostkey_preference(&session, &known_types);
        }
        set_fast_preferences(&session);
        session.set_tcp_stream(stream);
        session.handshake().map_err(|e| {
            if is_timeout(ssh_code(&e)) {
                connect_error(format!("no SSH handshake within {timeout:?}"))
            } else {
                connect_error(format!("SSH handshake failed: {}", e.message()))
            }
        })?;
        tracing::debug!(
            host = %name,
            kex = ?session.methods(MethodType::Kex),
            hostkey = ?session.methods(MethodType::HostKey),
            cipher = ?session.methods(MethodType::CryptCs),
            "negotiated"
        );
        let transport = SshTransport {
            name: name.to_owned(),
            session,
            _via: None,
        };
        transport.verify_host_key(target, settings, known_hosts, &known)?;
        transport.authenticate(target, timeout)?;
        Ok(transport)
    }

    fn verify_host_key(
        &self,
        target: &SshTarget,
        settings: &SshSettings,
        known_hosts_path: &Path,
        known: &str,
    ) -> Result<(), TransportError> {
        let (blob, kind) = self
            .session
            .host_key()
            .ok_or_else(|| TransportError::Connect {
                host: self.name.clone(),
                reason: "the host offered no host key".into(),
            })?;
        let blob = blob.to_vec();
        let key_type = known_hosts::key_type_of(&blob)
            .unwrap_or(host_key_type_name(kind))
            .to_owned();
        let fingerprint = known_hosts::fingerprint_sha256(&blob);
        let known_hosts_name = known_hosts_path.display().to_string();
        match known_hosts::check(known, &target.host, target.port, &key_type, &blob) {
            KeyCheck::Match => Ok(()),
            check @ (KeyCheck::Mismatch | KeyCheck::Revoked) => {
                let mut recorded: Vec<String> =
                    known_hosts::recorded_fingerprints(known, &target.host, target.port, &key_type)
                        .into_iter()
                        .map(|fp| format!("{key_type} {fp}"))
                        .collect();
                if check == KeyCheck::Revoked {
                    recorded.push(format!("{key_type} {fingerprint} marked @revoked"));
                }
                Err(TransportError::ChangedHostKey {
                    host: self.name.clone(),
                    key_type,
                    fingerprint,
                    known_hosts: known_hosts_name,
                    recorded: recorded.join("\n            "),
                })
            }
            KeyCheck::NotFound if settings.accept_new_host_keys => {
                let line = known_hosts::entry_line(&target.host, target.port, &key_type, &blob);
                append_known_host(known_hosts_path, known, &line).map_err(|e| {
                    TransportError::Io {
                        host: self.name.clone(),
                        reason: format!("cannot add host key to {known_hosts_name}: {e}"),
                    }
                })?;
                tracing::info!(host = %self.name, %key_type, %fingerprint, "added host key to {known_hosts_name}");
                Ok(())
            }
            KeyCheck::NotFound => Err(TransportError::UnknownHostKey {
                host: self.name.clone(),
                key_type,
                fingerprint,
                known_hosts: known_hosts_name,
            }),
        }
    }
}
