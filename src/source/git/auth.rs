//! Credentials for fetching: none, an HTTPS token or user + password, or an SSH key with a
//! known_hosts file.
//!
//! Secrets are read from their file or environment variable at every operation rather than
//! once at start, so that a rotated Kubernetes Secret (a mounted file) takes effect without a
//! restart. They live in [`Secret`], whose Debug output is `<redacted>`, and never appear in
//! an error: errors say where a secret came from, not what it is.

use std::cell::RefCell;
use std::fmt;
use std::path::PathBuf;
use std::rc::Rc;

use git2::{CertificateCheckStatus, Cred, CredentialType, RemoteCallbacks};

use super::GitError;
use super::known_hosts::{HostKeyError, KnownHosts};
use super::url::{scrub_url, ssh_port};

/// The user name most Git hosts accept with a token, and the SSH user when the URL has none.
pub const DEFAULT_USER: &str = "git";

/// A secret value in memory. Debug and Display never show it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for handing to libgit2 and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Where a secret is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    File(PathBuf),
    /// The name of an environment variable (not its value).
    Env(String),
}

impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::File(p) => write!(f, "file {}", p.display()),
            SecretSource::Env(name) => write!(f, "environment variable {name}"),
        }
    }
}

impl SecretSource {
    /// Reads the secret. Tokens and passwords from a file lose their trailing newline
    /// (`echo token > file` is how people write them); keys are kept byte for byte.
    fn read(&self, trim_newline: bool) -> Result<Secret, String> {
        let value = match self {
            SecretSource::File(path) => std::fs::read_to_string(path).map_err(|e| e.to_string())?,
            SecretSource::Env(name) => std::env::var(name).map_err(|e| e.to_string())?,
        };
        let value = if trim_newline {
            value.trim_end_matches(['\n', '\r']).to_string()
        } else {
            value
        };
        if value.is_empty() {
            return Err("it is empty".into());
        }
        Ok(Secret(value))
    }
}

/// How Serin authenticates to the Git server.
#[derive(Debug, Clone, Default)]
pub enum GitAuth {
    #[default]
    None,
    /// HTTPS with a token as the password. The user name matters on some hosts
    /// (`x-access-token` for GitHub App tokens, `oauth2` for GitLab); [`GitAuth::token`]
    /// uses [`DEFAULT_USER`].
    Token {
        username: String,
        token: SecretSource,
    },
    /// HTTPS basic authentication.
    Basic {
        username: String,
        password: SecretSource,
    },
    /// SSH with a private key; the user is the one in the URL, or [`DEFAULT_USER`].
    Ssh {
        private_key: SecretSource,
        passphrase: Option<SecretSource>,
        /// The only host keys Serin trusts for the server.
        known_hosts: PathBuf,
    },
}

impl GitAuth {
    /// A token with the default user name.
    pub fn token(token: SecretSource) -> GitAuth {
        GitAuth::Token {
            username: DEFAULT_USER.to_string(),
            token,
        }
    }

    /// What is configured, for error messages: names and sources, never values.
    pub fn describe(&self) -> String {
        match self {
            GitAuth::None => "none".into(),
            GitAuth::Token { username, token } => {
                format!("token for user {username:?} from {token}")
            }
            GitAuth::Basic { username, password } => {
                format!("password for user {username:?} from {password}")
            }
            GitAuth::Ssh { private_key, .. } => format!("SSH key from {private_key}"),
        }
    }
}

/// Credentials loaded for one operation.
enum Loaded {
    None,
    UserPass {
        username: String,
        password: Secret,
    },
    Ssh {
        key: Secret,
        passphrase: Option<Secret>,
        known_hosts: KnownHosts,
    },
}

/// What the callbacks saw, so that a failure can be explained better than libgit2 does
/// (it replaces the callback's message with "invalid or unknown remote ssh hostkey", and
/// says nothing about which credentials were refused).
#[derive(Default)]
struct Outcome {
    secret_requests: u32,
    rejected: bool,
    unavailable: Option<String>,
    host_key: Option<HostKeyError>,
}

/// The credentials and observations of one network operation.
pub(super) struct Session {
    loaded: Rc<Loaded>,
    outcome: Rc<RefCell<Outcome>>,
    url: String,
    configured: String,
    /// libgit2 tries `user:password@` from the URL before asking the callback, so a request
    /// reaching the callback means those were refused.
    url_has_credentials: bool,
}

impl Session {
    /// Reads the secrets for an operation on `url`; a missing secret fails here, before
    /// any network traffic, with the place it was expected.
    pub(super) fn start(auth: &GitAuth, url: &str) -> Result<Session, GitError> {
        let unreadable = |source: &SecretSource| {
            let url = scrub_url(url);
            let what = source.to_string();
            move |reason| GitError::Secret { url, what, reason }
        };
        let loaded = match auth {
            GitAuth::None => Loaded::None,
            GitAuth::Token {
                username,
                token: source,
            }
            | GitAuth::Basic {
                username,
                password: source,
            } => Loaded::UserPass {
                username: username.clone(),
                password: source.read(true).map_err(unreadable(source))?,
            },
            GitAuth::Ssh {
                private_key,
                passphrase,
                known_hosts,
            } => Loaded::Ssh {
                key: private_key.read(false).map_err(unreadable(private_key))?,
                passphrase: match passphrase {
                    Some(p) => Some(p.read(true).map_err(unreadable(p))?),
                    None => None,
                },
                known_hosts: KnownHosts::load(known_hosts).map_err(|source| GitError::HostKey {
                    url: scrub_url(url),
                    source: Box::new(source),
                })?,
            },
        };
        let url_has_credentials = scrub_url(url) != url;
        let configured = match auth {
            GitAuth::None if url_has_credentials => "the ones in the URL".to_string(),
            _ => auth.describe(),
        };
        Ok(Session {
            loaded: Rc::new(loaded),
            outcome: Rc::default(),
            url: url.to_string(),
            configured,
            url_has_credentials,
        })
    }

    /// Callbacks for one libgit2 call. Several calls of one operation share the session,
    /// so the single-attempt rule holds across them.
    pub(super) fn callbacks(&self) -> RemoteCallbacks<'static> {
        let mut callbacks = RemoteCallbacks::new();
        let (loaded, outcome) = (Rc::clone(&self.loaded), Rc::clone(&self.outcome));
        callbacks.credentials(move |_url, user_from_url, allowed| {
            credentials(&loaded, &mut outcome.borrow_mut(), user_from_url, allowed)
        });
        let (loaded, outcome) = (Rc::clone(&self.loaded), Rc::clone(&self.outcome));
        let port = ssh_port(&self.url);
        callbacks.certificate_check(move |cert, host| {
            let Some(hostkey) = cert.as_hostkey() else {
                // A TLS certificate: OpenSSL's verification against the system roots stands.
                return Ok(CertificateCheckStatus::CertificatePassthrough);
            };
            match check_host_key(&loaded, host, port, hostkey.hostkey()) {
                Ok(()) => Ok(CertificateCheckStatus::CertificateOk),
                Err(e) => {
                    let message = e.to_string();
                    outcome.borrow_mut().host_key = Some(e);
                    Err(git2::Error::from_str(&message))
                }
            }
        });
        callbacks
    }

    /// Turns a failed libgit2 call into the error that says what really went wrong.
    pub(super) fn explain(&self, branch: &str, error: &git2::Error) -> GitError {
        let url = scrub_url(&self.url);
        let mut outcome = self.outcome.borrow_mut();
        if let Some(source) = outcome.host_key.take() {
            return GitError::HostKey {
                url,
                source: Box::new(source),
            };
        }
        let refused_from_url = self.url_has_credentials && outcome.unavailable.is_some();
        if outcome.rejected || refused_from_url {
            return GitError::AuthRejected {
                url,
                credentials: self.configured.clone(),
            };
        }
        if let Some(wanted) = outcome.unavailable.take() {
            return GitError::AuthUnavailable {
                url,
                wanted,
                configured: self.configured.clone(),
            };
        }
        GitError::Fetch {
            url,
            branch: branch.to_string(),
            message: scrub_url(error.message()),
        }
    }
}

fn credentials(
    loaded: &Loaded,
    outcome: &mut Outcome,
    user_from_url: Option<&str>,
    allowed: CredentialType,
) -> Result<Cred, git2::Error> {
    let user = user_from_url.unwrap_or(DEFAULT_USER);
    if allowed == CredentialType::USERNAME {
        // SSH asks for the login name first when the URL has none; that is no attempt.
        return Cred::username(user);
    }
    // libgit2 asks again after every refusal and never stops on its own: a second request
    // means the first credentials were refused, and trying them again cannot help.
    outcome.secret_requests += 1;
    if outcome.secret_requests > 1 {
        outcome.rejected = true;
        return Err(git2::Error::from_str("credentials rejected"));
    }
    match loaded {
        Loaded::UserPass { username, password }
            if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) =>
        {
            Cred::userpass_plaintext(username, password.expose())
        }
        Loaded::Ssh {
            key, passphrase, ..
        } if allowed.contains(CredentialType::SSH_MEMORY) => Cred::ssh_key_from_memory(
            user,
            None,
            key.expose(),
            passphrase.as_ref().map(Secret::expose),
        ),
        _ => {
            outcome.unavailable = Some(describe_allowed(allowed));
            Err(git2::Error::from_str("no suitable credentials configured"))
        }
    }
}

fn describe_allowed(allowed: CredentialType) -> String {
    let mut kinds = Vec::new();
    if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
        kinds.push("user/password (token)");
    }
    if allowed.intersects(CredentialType::SSH_KEY | CredentialType::SSH_MEMORY) {
        kinds.push("SSH key");
    }
    if kinds.is_empty() {
        kinds.push("other");
    }
    kinds.join(" or ")
}

fn check_host_key(
    loaded: &Loaded,
    host: &str,
    port: u16,
    key: Option<&[u8]>,
) -> Result<(), HostKeyError> {
    let Some(key) = key else {
        return Err(HostKeyError::NoKey { host: host.into() });
    };
    match loaded {
        Loaded::Ssh { known_hosts, .. } => known_hosts.verify(host, port, key),
        _ => Err(HostKeyError::NoKnownHosts {
            host: host.into(),
            fingerprint: super::known_hosts::fingerprint(key),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "<redacted>");
        let loaded = Loaded::UserPass {
            username: "git".into(),
            password: s,
        };
        if let Loaded::UserPass { password, .. } = &loaded {
            assert_eq!(format!("{password:?}"), "<redacted>");
        }
    }

    #[test]
    fn a_missing_secret_names_its_source_not_a_value() {
        let auth = GitAuth::token(SecretSource::Env("SERIN_TEST_SURELY_UNSET_VAR".into()));
        let Err(err) = Session::start(&auth, "https://u:pw@example.com/r.git") else {
            panic!("an unset variable must fail");
        };
        let text = err.to_string();
        assert!(
            text.contains("environment variable SERIN_TEST_SURELY_UNSET_VAR"),
            "{text}"
        );
        assert!(!text.contains("pw"), "{text}");
    }

    #[test]
    fn a_second_request_gives_up() {
        let loaded = Loaded::UserPass {
            username: "git".into(),
            password: Secret::new("t"),
        };
        let mut outcome = Outcome::default();
        let allowed = CredentialType::USER_PASS_PLAINTEXT;
        assert!(credentials(&loaded, &mut outcome, None, allowed).is_ok());
        assert!(credentials(&loaded, &mut outcome, None, allowed).is_err());
        assert!(outcome.rejected);
    }
}
