//! Verifying an SSH server's host key against an OpenSSH `known_hosts` file.
//!
//! libgit2 only consults `~/.ssh/known_hosts` of the process; Serin instead takes the file
//! from its configuration (typically a mounted Secret, the Flux convention) and decides
//! itself. An unknown or changed key is always an error: accepting it would let anyone on
//! the network path serve Serin a configuration that it then applies to the cluster.

use std::path::Path;

use sha2::{Digest, Sha256};

/// Why a server's host key was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum HostKeyError {
    #[error("cannot read known_hosts file {path}")]
    Unreadable {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "SSH host {host} is not in known_hosts; it presented the {key_type} key {fingerprint}. \
         If that is the host's key, add it (ssh-keyscan -p <port> <host>) to known_hosts{note}"
    )]
    Unknown {
        host: String,
        key_type: String,
        fingerprint: String,
        /// Why the file may not have matched although it seems to list the host.
        note: String,
    },
    #[error(
        "the {key_type} host key of SSH host {host} does not match known_hosts: the server \
         presented {fingerprint}. Either someone intercepts the connection or the host's key \
         was replaced; update known_hosts only after checking the new key with its owner"
    )]
    Changed {
        host: String,
        key_type: String,
        fingerprint: String,
    },
    #[error(
        "SSH host {host} presented a {key_type} key ({fingerprint}), but known_hosts lists \
         only {known_types} keys for it; add its {key_type} key (ssh-keyscan -t {key_type})"
    )]
    OtherKeyTypes {
        host: String,
        key_type: String,
        fingerprint: String,
        known_types: String,
    },
    #[error("SSH host {host} presented the key {fingerprint}, which known_hosts marks @revoked")]
    Revoked { host: String, fingerprint: String },
    #[error(
        "SSH host {host} presented the key {fingerprint}, but no known_hosts file is \
         configured, so it cannot be trusted"
    )]
    NoKnownHosts { host: String, fingerprint: String },
    #[error("SSH host {host} did not present a host key Serin can check")]
    NoKey { host: String },
}

/// The entries of one known_hosts file.
#[derive(Debug, Clone, Default)]
pub struct KnownHosts {
    entries: Vec<Entry>,
    /// `|1|salt|hash` entries: matching them needs HMAC-SHA1, which Serin does not carry.
    hashed: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Marker {
    None,
    Revoked,
    /// Host certificates are not supported by libssh2's host key callback; kept only so
    /// that such lines never count as a plain key.
    CertAuthority,
}

#[derive(Debug, Clone)]
struct Entry {
    marker: Marker,
    patterns: Vec<String>,
    key_type: String,
    key: Vec<u8>,
}

impl KnownHosts {
    pub fn load(path: &Path) -> Result<KnownHosts, HostKeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| HostKeyError::Unreadable {
            path: path.display().to_string(),
            source,
        })?;
        Ok(KnownHosts::parse(&text))
    }

    /// Parses the OpenSSH format; lines it cannot read are skipped, as ssh itself does.
    pub fn parse(text: &str) -> KnownHosts {
        let mut known = KnownHosts::default();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if line.starts_with("|1|") {
                known.hashed += 1;
                continue;
            }
            if let Some(entry) = parse_line(line) {
                known.entries.push(entry);
            }
        }
        known
    }

    /// Accepts `key` (the SSH wire-format public key blob) for `host`:`port` only if a
    /// plain entry for that host lists exactly this key.
    pub fn verify(&self, host: &str, port: u16, key: &[u8]) -> Result<(), HostKeyError> {
        let names = lookup_names(host, port);
        let host = display_host(host, port);
        let fingerprint = fingerprint(key);
        let key_type = key_type(key).unwrap_or("unknown").to_string();
        let matching: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| host_matches(&e.patterns, &names))
            .collect();
        if matching
            .iter()
            .any(|e| e.marker == Marker::Revoked && e.key == key)
        {
            return Err(HostKeyError::Revoked { host, fingerprint });
        }
        let plain: Vec<&Entry> = matching
            .into_iter()
            .filter(|e| e.marker == Marker::None)
            .collect();
        if plain.iter().any(|e| e.key == key) {
            return Ok(());
        }
        if plain.iter().any(|e| e.key_type == key_type) {
            return Err(HostKeyError::Changed {
                host,
                key_type,
                fingerprint,
            });
        }
        if !plain.is_empty() {
            let mut types: Vec<&str> = plain.iter().map(|e| e.key_type.as_str()).collect();
            types.sort_unstable();
            types.dedup();
            return Err(HostKeyError::OtherKeyTypes {
                host,
                key_type,
                fingerprint,
                known_types: types.join(", "),
            });
        }
        Err(HostKeyError::Unknown {
            host,
            key_type,
            fingerprint,
            note: self.hashed_note(),
        })
    }

    fn hashed_note(&self) -> String {
        if self.hashed == 0 {
            return String::new();
        }
        format!(
            ". The file has {} hashed (|1|...) entries, which Serin does not support: \
             list hosts in plain form (ssh-keyscan without -H)",
            self.hashed
        )
    }
}

fn parse_line(line: &str) -> Option<Entry> {
    let mut fields = line.split_whitespace();
    let mut first = fields.next()?;
    let marker = match first {
        "@revoked" => Marker::Revoked,
        "@cert-authority" => Marker::CertAuthority,
        _ => Marker::None,
    };
    if marker != Marker::None {
        first = fields.next()?;
    }
    let key_type = fields.next()?.to_string();
    let key = base64_decode(fields.next()?)?;
    let patterns = first.split(',').map(str::to_ascii_lowercase).collect();
    Some(Entry {
        marker,
        patterns,
        key_type,
        key,
    })
}

/// The names a known_hosts line may use for the host: OpenSSH writes `[host]:port` for any
/// port but 22, and either form for 22.
fn lookup_names(host: &str, port: u16) -> Vec<String> {
    let host = host.to_ascii_lowercase();
    if port == 22 {
        vec![format!("[{host}]:22"), host]
    } else {
        vec![format!("[{host}]:{port}")]
    }
}

fn display_host(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// OpenSSH semantics: a line matches if some pattern matches and no negated (`!`) one does.
fn host_matches(patterns: &[String], names: &[String]) -> bool {
    let mut matched = false;
    for pattern in patterns {
        let (negated, pattern) = match pattern.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, pattern.as_str()),
        };
        if names.iter().any(|n| glob(pattern.as_bytes(), n.as_bytes())) {
            if negated {
                return false;
            }
            matched = true;
        }
    }
    matched
}

/// `*` and `?` wildcards, as in known_hosts host patterns.
fn glob(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                backtrack = Some((p, n));
                p += 1;
            }
            Some(&c) if c == b'?' || c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match backtrack {
                Some((star, at)) => {
                    p = star + 1;
                    n = at + 1;
                    backtrack = Some((star, at + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// The algorithm name inside a wire-format key blob (a length-prefixed string).
fn key_type(key: &[u8]) -> Option<&str> {
    let len = u32::from_be_bytes(key.get(..4)?.try_into().ok()?) as usize;
    std::str::from_utf8(key.get(4..4 + len)?).ok()
}

/// `SHA256:<base64>`, the form `ssh-keygen -l` and ssh's own warnings print.
pub fn fingerprint(key: &[u8]) -> String {
    format!("SHA256:{}", base64_encode_unpadded(&Sha256::digest(key)))
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode_unpadded(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(BASE64[(n >> (18 - 6 * i)) as usize & 63]));
        }
    }
    out
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in text.bytes() {
        let v = BASE64.iter().position(|&b| b == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A made-up ed25519 key blob: the real format (length-prefixed name + 32 bytes).
    fn blob(seed: u8) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&11u32.to_be_bytes());
        b.extend_from_slice(b"ssh-ed25519");
        b.extend_from_slice(&32u32.to_be_bytes());
        b.extend(std::iter::repeat_n(seed, 32));
        b
    }

    fn rsa_blob() -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&7u32.to_be_bytes());
        b.extend_from_slice(b"ssh-rsa");
        b.extend_from_slice(&[1, 2, 3]);
        b
    }

    fn line(hosts: &str, key: &[u8]) -> String {
        let ty = key_type(key).expect("type");
        let mut b64 = base64_encode_unpadded(key);
        while !b64.len().is_multiple_of(4) {
            b64.push('=');
        }
        format!("{hosts} {ty} {b64} comment\n")
    }

    #[test]
    fn base64_round_trips() {
        for len in 0..10 {
            let data: Vec<u8> = (0..len).map(|i: u8| i.wrapping_mul(37) + 1).collect();
            let mut enc = base64_encode_unpadded(&data);
            assert_eq!(base64_decode(&enc).as_deref(), Some(&data[..]));
            while !enc.len().is_multiple_of(4) {
                enc.push('=');
            }
            assert_eq!(base64_decode(&enc).as_deref(), Some(&data[..]));
        }
        assert_eq!(base64_encode_unpadded(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_encode_unpadded(b"fo"), "Zm8");
        assert_eq!(base64_decode("not*base64"), None);
    }

    #[test]
    fn host_forms_match_like_openssh() {
        let key = blob(1);
        let cases = [
            ("example.com", "example.com", 22, true),
            ("example.com,10.0.0.1", "10.0.0.1", 22, true),
            ("EXAMPLE.com", "example.COM", 22, true),
            ("[example.com]:22", "example.com", 22, true),
            ("[example.com]:2222", "example.com", 2222, true),
            ("example.com", "example.com", 2222, false),
            ("[example.com]:2222", "example.com", 22, false),
            ("*.example.com", "git.example.com", 22, true),
            (
                "*.example.com,!evil.example.com",
                "evil.example.com",
                22,
                false,
            ),
            ("git?.example.com", "git1.example.com", 22, true),
            ("other.com", "example.com", 22, false),
        ];
        for (hosts, host, port, want) in cases {
            let known = KnownHosts::parse(&line(hosts, &key));
            assert_eq!(
                known.verify(host, port, &key).is_ok(),
                want,
                "{hosts} vs {host}:{port}"
            );
        }
    }

    #[test]
    fn every_refusal_names_the_host_and_the_fingerprint() {
        let good = blob(1);
        let other = blob(2);
        let fp = fingerprint(&other);
        let file = format!(
            "# comment\n\n{}{}garbage line\n|1|c2FsdA==|aGFzaA== ssh-ed25519 AAAA\n",
            line("[git.example]:2222", &good),
            line("@revoked revoked.example", &other),
        );
        let known = KnownHosts::parse(&file);
        assert!(known.verify("git.example", 2222, &good).is_ok());

        let changed = known
            .verify("git.example", 2222, &other)
            .expect_err("changed");
        assert!(
            matches!(changed, HostKeyError::Changed { .. }),
            "{changed:?}"
        );
        let unknown = known
            .verify("new.example", 22, &other)
            .expect_err("unknown");
        assert!(
            matches!(unknown, HostKeyError::Unknown { .. }),
            "{unknown:?}"
        );
        assert!(unknown.to_string().contains("hashed (|1|...)"), "{unknown}");
        let revoked = known
            .verify("revoked.example", 22, &other)
            .expect_err("revoked");
        assert!(
            matches!(revoked, HostKeyError::Revoked { .. }),
            "{revoked:?}"
        );
        let types = known
            .verify("git.example", 2222, &rsa_blob())
            .expect_err("types");
        assert!(
            matches!(types, HostKeyError::OtherKeyTypes { .. }),
            "{types:?}"
        );

        for (err, host) in [
            (changed, "[git.example]:2222"),
            (unknown, "new.example"),
            (revoked, "revoked.example"),
        ] {
            let text = err.to_string();
            assert!(text.contains(host) && text.contains(&fp), "{text}");
        }
    }

    #[test]
    fn fingerprints_use_the_openssh_form() {
        // `ssh-keygen -lf` (OpenSSH 9.2) printed this fingerprint for this public key.
        let known = KnownHosts::parse(
            "h ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMFWdmtkSreUk+TGyIu4RjictYHX7UiEsNgZybT/dOuT x\n",
        );
        let key = &known.entries[0].key;
        assert_eq!(key_type(key), Some("ssh-ed25519"));
        assert_eq!(
            fingerprint(key),
            "SHA256:6CuX6VO534e3IwMHXtYCSJfEj9GHCGypkR9g2+7kKGg"
        );
    }
}
