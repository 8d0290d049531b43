//! known_hosts parsing and checking, done by us rather than by libssh2.
//!
//! libssh2's own checker cannot tell "host known only with another key type"
//! from "key changed" (it answers *Mismatch* for both), and it cannot honour
//! `@revoked`. Doing it here keeps the decision pure and unit-tested; the SSH
//! transport only feeds it the file's content and the key the host offered.
//!
//! Semantics follow OpenSSH (`hostfile.c`, `match.c`): the name looked up is
//! `host` for port 22 and `[host]:port` otherwise, compared case-insensitively
//! against comma-separated patterns (`*`, `?`, `!negation`) or a hashed name
//! `|1|salt|HMAC-SHA1(salt, name)`. A line with a matching negated pattern
//! never applies. `@cert-authority` lines are ignored (we do not do host
//! certificates); malformed lines are skipped like OpenSSH skips them.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// What known_hosts says about the key a host offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyCheck {
    /// An entry for the host holds exactly this key.
    Match,
    /// Entries for the host hold a different key of the same type: the key changed.
    Mismatch,
    /// Nothing known for this host and key type (other key types may be known).
    NotFound,
    /// The key is marked `@revoked` for this host: refuse it whatever else matches.
    Revoked,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    None,
    Revoked,
    CertAuthority,
}

struct Entry<'a> {
    marker: Marker,
    hosts: &'a str,
    key_type: &'a str,
    blob: Vec<u8>,
}

/// The name OpenSSH looks up: `host` on port 22, else `[host]:port`; lower case
/// because OpenSSH lowercases host names before looking them up.
fn lookup_name(host: &str, port: u16) -> String {
    let host = host.to_ascii_lowercase();
    if port == 22 {
        host
    } else {
        format!("[{host}]:{port}")
    }
}

fn decode_b64(s: &str) -> Option<Vec<u8>> {
    STANDARD
        .decode(s)
        .or_else(|_| STANDARD_NO_PAD.decode(s))
        .ok()
}

fn parse_line(line: &str) -> Option<Entry<'_>> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let mut fields = line.split_ascii_whitespace();
    let mut first = fields.next()?;
    let marker = if first.starts_with('@') {
        let marker = match first {
            "@revoked" => Marker::Revoked,
            "@cert-authority" => Marker::CertAuthority,
            _ => return None,
        };
        first = fields.next()?;
        marker
    } else {
        Marker::None
    };
    let key_type = fields.next()?;
    let blob = decode_b64(fields.next()?)?;
    // A key whose embedded type disagrees with the type field is corrupt.
    if key_type_of(&blob) != Some(key_type) {
        return None;
    }
    Some(Entry {
        marker,
        hosts: first,
        key_type,
        blob,
    })
}

/// The key type written inside an SSH public key blob (its first SSH string),
/// e.g. `ssh-ed25519`. This is what the wire protocol really says, so it is
/// more reliable than any library's enum.
pub fn key_type_of(blob: &[u8]) -> Option<&str> {
    let len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
    let name = blob.get(4..4usize.checked_add(len)?)?;
    std::str::from_utf8(name).ok().filter(|s| !s.is_empty())
}

/// Glob match with `*` (any run) and `?` (one character), as OpenSSH's `match_pattern`.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

fn hashed_match(field: &str, name: &str) -> bool {
    let Some(rest) = field.strip_prefix("|1|") else {
        return false;
    };
    let Some((salt, hash)) = rest.split_once('|') else {
        return false;
    };
    let (Some(salt), Some(hash)) = (decode_b64(salt), decode_b64(hash)) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(&salt) else {
        return false;
    };
    mac.update(name.as_bytes());
    mac.verify_slice(&hash).is_ok()
}

/// Whether a host field applies to `name`: one positive match and no negated one.
fn hosts_match(field: &str, name: &str) -> bool {
    if field.starts_with('|') {
        return hashed_match(field, name);
    }
    let mut positive = false;
    for pattern in field.split(',').filter(|p| !p.is_empty()) {
        let pattern = pattern.to_ascii_lowercase();
        if let Some(negated) = pattern.strip_prefix('!') {
            if glob(negated.as_bytes(), name.as_bytes()) {
                return false;
            }
        } else if glob(pattern.as_bytes(), name.as_bytes()) {
            positive = true;
        }
    }
    positive
}

fn entries_for<'a>(content: &'a str, host: &str, port: u16) -> impl Iterator<Item = Entry<'a>> {
    let name = lookup_name(host, port);
    content
        .lines()
        .filter_map(parse_line)
        .filter(|e| e.marker != Marker::CertAuthority)
        .filter(move |e| hosts_match(e.hosts, &name))
}

/// Judge the key a host offered against known_hosts content.
///
/// `Revoked` beats everything; then any exact entry is a `Match` (a host may
/// legitimately be listed twice); a same-type entry with another blob is a
/// `Mismatch`; a host known only with other key types is `NotFound`, because
/// servers offer several key types and which one is negotiated may vary.
pub fn check(content: &str, host: &str, port: u16, key_type: &str, key_blob: &[u8]) -> KeyCheck {
    let mut matched = false;
    let mut mismatched = false;
    for entry in entries_for(content, host, port) {
        let same_blob = entry.blob == key_blob;
        match entry.marker {
            Marker::Revoked if same_blob => return KeyCheck::Revoked,
            Marker::Revoked | Marker::CertAuthority => {}
            Marker::None if same_blob => matched = true,
            Marker::None if entry.key_type == key_type => mismatched = true,
            Marker::None => {}
        }
    }
    if matched {
        KeyCheck::Match
    } else if mismatched {
        KeyCheck::Mismatch
    } else {
        KeyCheck::NotFound
    }
}

/// The fingerprints known_hosts records for this host and key type, in file
/// order, without duplicates: what a changed key is shown against.
pub fn recorded_fingerprints(content: &str, host: &str, port: u16, key_type: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for entry in entries_for(content, host, port) {
        if entry.marker == Marker::None && entry.key_type == key_type {
            let fp = fingerprint_sha256(&entry.blob);
            if !out.contains(&fp) {
                out.push(fp);
            }
        }
    }
    out
}

/// Key types known_hosts trusts for this host, in file order, without
/// duplicates. Revoked keys are left out so they are not asked for first.
pub fn key_types_for(content: &str, host: &str, port: u16) -> Vec<String> {
    let mut types: Vec<String> = Vec::new();
    for entry in entries_for(content, host, port) {
        if entry.marker == Marker::None && !types.iter().any(|t| t == entry.key_type) {
            types.push(entry.key_type.to_owned());
        }
    }
    types
}

/// `SHA256:<base64, no padding>` of the key blob, exactly as `ssh-keygen -lf` shows it.
pub fn fingerprint_sha256(blob: &[u8]) -> String {
    format!("SHA256:{}", STANDARD_NO_PAD.encode(Sha256::digest(blob)))
}

/// A plain (unhashed) known_hosts line for the host, without the newline.
pub fn entry_line(host: &str, port: u16, key_type: &str, blob: &[u8]) -> String {
    format!(
        "{} {key_type} {}",
        lookup_name(host, port),
        STANDARD.encode(blob)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    // Keys and hashed lines made with ssh-keygen (-t ed25519/ecdsa/rsa, -H, -lf)
    // when this test was written.
    const ED25519: &str = "AAAAC3NzaC1lZDI1NTE5AAAAILTDJtLmMH9xjBEFVBHS3Lg3Gh22mrgEjYoRj9TPeQ9I";
    const ED25519_FP: &str = "SHA256:egpQtK0nJO+oBro+Tujy0neP7hSk9fpISHyaHB9EGrk";
    const ECDSA: &str = "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBHQ6QHQSeaL3AatrswHZiBoHmgnwm6cV3XecfAztk1ruZ2u9TN7IpvYLU7rH06s3gHQGqml5FlZyUuLueWuch1Q=";
    const ECDSA_FP: &str = "SHA256:rZ36VunnGzDUQcghMqVYaiHdF6chZZUBB+/a1QckyK4";
    const RSA: &str = "AAAAB3NzaC1yc2EAAAADAQABAAABAQDVFlk3w/4+jJBgqsuAToC5kI7KEUQsyO/VwUCd4NALI9/z0y+zUSOhz/uOKXOO1ZzVFujsGspZZpW/tBPTK4lwUb8+8fQdRo/C5ZDwIpQA77znO4eOaQmh54Fkt81ltdcoJ4qpTgZuLphBx7Noe4bXWwL3uov6taS02aqz6KElydVjcHj7GdcfgMtxqm3c5OotejV9vrUcVtKPfpdvFobICNMLD1OGj0Tye+nqGDuTIbLpAyaxUWhQrEovN+JXQ3lujyMQQRmdYK87lhKd9uy+IaBsyKHyrlFKa38OxtjcwAPUzJasHLULtGmRUyiZl2dJFMW/fh5UBmWTKCLNN///";
    const RSA_FP: &str = "SHA256:BhjIrVIGv8gZ/CGQL3GUJEaPxT5U2R8Yg6g14+2CaNE";
    /// `ssh-keygen -H` of `[db.example.com]:2222 ssh-ed25519 ED25519`.
    const HASHED_DB_2222: &str = "|1|wLXHTJFMeDgIQQZAMViCkugX6og=|DQlcFXDm4TJkiMVeH0QXg4lOArI=";
    /// `ssh-keygen -H` of `web1.example.com ecdsa-sha2-nistp256 ECDSA`.
    const HASHED_WEB1: &str = "|1|TxvMSztdNWzDPCFwifJJbzAduSo=|VEMPbk+RDfEak9TlcWUeIipOhi4=";

    fn blob(b64: &str) -> Vec<u8> {
        STANDARD.decode(b64).unwrap()
    }

    fn ed() -> Vec<u8> {
        blob(ED25519)
    }

    #[test]
    fn fingerprints_match_ssh_keygen() {
        assert_eq!(fingerprint_sha256(&ed()), ED25519_FP);
        assert_eq!(fingerprint_sha256(&blob(ECDSA)), ECDSA_FP);
        assert_eq!(fingerprint_sha256(&blob(RSA)), RSA_FP);
    }

    #[test]
    fn key_type_comes_from_the_blob() {
        assert_eq!(key_type_of(&ed()), Some("ssh-ed25519"));
        assert_eq!(key_type_of(&blob(ECDSA)), Some("ecdsa-sha2-nistp256"));
        assert_eq!(key_type_of(&blob(RSA)), Some("ssh-rsa"));
        assert_eq!(key_type_of(&[0, 0, 0, 9, b'a']), None);
        assert_eq!(key_type_of(&[0, 0]), None);
        assert_eq!(key_type_of(&[]), None);
    }

    #[test]
    fn plain_names_and_ports() {
        let kh = format!(
            "web1,10.0.0.1 ssh-ed25519 {ED25519} ops@laptop\n[db]:2222 ssh-ed25519 {ED25519}\n"
        );
        assert_eq!(
            check(&kh, "web1", 22, "ssh-ed25519", &ed()),
            KeyCheck::Match
        );
        assert_eq!(
            check(&kh, "10.0.0.1", 22, "ssh-ed25519", &ed()),
            KeyCheck::Match
        );
        assert_eq!(
            check(&kh, "WEB1", 22, "ssh-ed25519", &ed()),
            KeyCheck::Match
        );
        // A plain name only stands for port 22.
        assert_eq!(
            check(&kh, "web1", 2222, "ssh-ed25519", &ed()),
            KeyCheck::NotFound
        );
        assert_eq!(
            check(&kh, "db", 2222, "ssh-ed25519", &ed()),
            KeyCheck::Match
        );
        assert_eq!(
            check(&kh, "db", 22, "ssh-ed25519", &ed()),
            KeyCheck::NotFound
        );
        assert_eq!(
            check(&kh, "web2", 22, "ssh-ed25519", &ed()),
            KeyCheck::NotFound
        );
    }

    #[test]
    fn changed_key_of_same_type_is_a_mismatch() {
        let other = {
            let mut b = ed();
            *b.last_mut().unwrap() ^= 1;
            b
        };
        let kh = format!("web1 ssh-ed25519 {ED25519}\n");
        assert_eq!(
            check(&kh, "web1", 22, "ssh-ed25519", &other),
            KeyCheck::Mismatch
        );
        // The refusal shows what was recorded next to what was offered.
        assert_eq!(
            recorded_fingerprints(&kh, "web1", 22, "ssh-ed25519"),
            [ED25519_FP]
        );
        assert!(recorded_fingerprints(&kh, "web1", 22, "ssh-rsa").is_empty());
        // One good entry among stale ones is enough.
        let kh2 = format!("web1 ssh-ed25519 {}\n{kh}", STANDARD.encode(&other));
        assert_eq!(
            check(&kh2, "web1", 22, "ssh-ed25519", &ed()),
            KeyCheck::Match
        );
    }

    #[test]
    fn other_key_types_only_is_not_found() {
        let kh = format!("web1 ssh-rsa {RSA}\nweb1 ecdsa-sha2-nistp256 {ECDSA}\n");
        assert_eq!(
            check(&kh, "web1", 22, "ssh-ed25519", &ed()),
            KeyCheck::NotFound
        );
        assert_eq!(
            key_types_for(&kh, "web1", 22),
            vec!["ssh-rsa", "ecdsa-sha2-nistp256"]
        );
        assert!(key_types_for(&kh, "web2", 22).is_empty());
    }

    #[test]
    fn hashed_entries_from_ssh_keygen() {
        let kh = format!(
            "{HASHED_DB_2222} ssh-ed25519 {ED25519}\n{HASHED_WEB1} ecdsa-sha2-nistp256 {ECDSA}\n"
        );
        assert_eq!(
            check(&kh, "db.example.com", 2222, "ssh-ed25519", &ed()),
            KeyCheck::Match
        );
        assert_eq!(
            check(&kh, "DB.example.com", 2222, "ssh-ed25519", &ed()),
            KeyCheck::Match
        );
        assert_eq!(
            check(&kh, "db.example.com", 22, "ssh-ed25519", &ed()),
            KeyCheck::NotFound
        );
        assert_eq!(
            check(
                &kh,
                "web1.example.com",
                22,
                "ecdsa-sha2-nistp256",
                &blob(ECDSA)
            ),
            KeyCheck::Match
        );
        assert_eq!(
            key_types_for(&kh, "web1.example.com", 22),
            vec!["ecdsa-sha2-nistp256"]
        );
        assert_eq!(
            key_types_for(&kh, "db.example.com", 2222),
            vec!["ssh-ed25519"]
        );
        assert!(key_types_for(&kh, "web2.example.com", 22).is_empty());
    }

    #[test]
    fn hashed_entry_computed_here_agrees() {
        let salt = [7u8; 20];
        let mut mac = Hmac::<Sha1>::new_from_slice(&salt).unwrap();
        mac.update(b"[10.1.2.3]:2200");
        let hash = mac.finalize().into_bytes();
        let field = format!("|1|{}|{}", STANDARD.encode(salt), STANDARD.encode(hash));
        let kh = format!("{field} ssh-ed25519 {ED25519}\n");
        assert_eq!(
            check(&kh, "10.1.2.3", 2200, "ssh-ed25519", &ed()),
            KeyCheck::Match
        );
        assert_eq!(
            check(&kh, "10.1.2.3", 22, "ssh-ed25519", &ed()),
            KeyCheck::NotFound
        );
    }

    #[test]
    fn wildcards_and_negation() {
        let kh = format!("*.prod.example.com,!db?.prod.example.com ssh-ed25519 {ED25519}\n");
        let ok = |h: &str| check(&kh, h, 22, "ssh-ed25519", &ed());
        assert_eq!(ok("web1.prod.example.com"), KeyCheck::Match);
        assert_eq!(ok("db1.prod.example.com"), KeyCheck::NotFound);
        assert_eq!(ok("db12.prod.example.com"), KeyCheck::Match);
        assert_eq!(ok("prod.example.com"), KeyCheck::NotFound);
        let kh = format!("[10.0.0.?]:* ssh-ed25519 {ED25519}\n");
        assert_eq!(
            check(&kh, "10.0.0.7", 2222, "ssh-ed25519", &ed()),
            KeyCheck::Match
        );
        assert_eq!(
            check(&kh, "10.0.0.17", 2222, "ssh-ed25519", &ed()),
            KeyCheck::NotFound
        );
        assert!(glob(b"a*b*c", b"aXXbYYc"));
        assert!(glob(b"*", b""));
        assert!(!glob(b"a*b", b"aXXc"));
    }

    #[test]
    fn revoked_beats_match() {
        let kh = format!("web1 ssh-ed25519 {ED25519}\n@revoked * ssh-ed25519 {ED25519}\n");
        assert_eq!(
            check(&kh, "web1", 22, "ssh-ed25519", &ed()),
            KeyCheck::Revoked
        );
        assert_eq!(
            check(&kh, "other", 22, "ssh-ed25519", &ed()),
            KeyCheck::Revoked
        );
        // A revoked key is not a type to prefer.
        assert!(key_types_for(&kh, "other", 22).is_empty());
        // Revocation of another key does not affect this one.
        let kh = format!("web1 ssh-ed25519 {ED25519}\n@revoked * ssh-rsa {RSA}\n");
        assert_eq!(
            check(&kh, "web1", 22, "ssh-ed25519", &ed()),
            KeyCheck::Match
        );
    }

    #[test]
    fn cert_authority_comments_and_garbage_are_ignored() {
        let kh = format!(
            "# a comment\n\n   \n@cert-authority web1 ssh-ed25519 {ED25519}\n\
             web1 ssh-ed25519 not-base64!!\n\
             web1 ssh-ed25519\n\
             web1 ssh-rsa {ED25519}\n\
             @bogus web1 ssh-ed25519 {ED25519}\n\
             web1 1024 35 12345\n"
        );
        assert_eq!(
            check(&kh, "web1", 22, "ssh-ed25519", &ed()),
            KeyCheck::NotFound
        );
        assert!(key_types_for(&kh, "web1", 22).is_empty());
        // …and a good line after them still counts (CRLF too).
        let kh = format!("{kh}  web1 ssh-ed25519 {ED25519} c\r\n");
        assert_eq!(
            check(&kh, "web1", 22, "ssh-ed25519", &ed()),
            KeyCheck::Match
        );
    }

    #[test]
    fn entry_lines_round_trip() {
        let line = entry_line("127.0.0.1", 22999, "ssh-ed25519", &ed());
        assert_eq!(line, format!("[127.0.0.1]:22999 ssh-ed25519 {ED25519}"));
        assert_eq!(
            check(&line, "127.0.0.1", 22999, "ssh-ed25519", &ed()),
            KeyCheck::Match
        );
        let line = entry_line("Web1", 22, "ecdsa-sha2-nistp256", &blob(ECDSA));
        assert_eq!(line, format!("web1 ecdsa-sha2-nistp256 {ECDSA}"));
        assert_eq!(
            check(&line, "web1", 22, "ecdsa-sha2-nistp256", &blob(ECDSA)),
            KeyCheck::Match
        );
    }
}
