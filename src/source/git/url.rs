//! URLs as Serin shows them: never with credentials in them.

/// Returns `text` with the credentials removed from every URL in it.
///
/// Works on any text, not just a bare URL, because libgit2 echoes the URL it was given inside
/// its error messages. For `http(s)://` and other schemes the whole `user[:password]@` part is
/// removed, since hosts accept a token as the user name (`https://<token>@host/...`). For SSH
/// URLs the user name is kept (`ssh://git@host/...` is not a secret and tells which account
/// is used); a password is still removed.
pub fn scrub_url(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let authority_start = i + 3;
        out.push_str(&rest[..authority_start]);
        let after = &rest[authority_start..];
        let end = after.find(ends_authority).unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rfind('@') {
            Some(at) => {
                if is_ssh_scheme(scheme_before(&rest[..i])) {
                    let user = authority[..at].split(':').next().unwrap_or_default();
                    out.push_str(user);
                    out.push('@');
                }
                out.push_str(&authority[at + 1..]);
            }
            None => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

fn ends_authority(c: char) -> bool {
    matches!(c, '/' | '?' | '#' | '"' | '\'' | '<' | '>' | '`') || c.is_whitespace()
}

fn scheme_before(text: &str) -> &str {
    let start = text
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
        .map_or(0, |i| i + 1);
    &text[start..]
}

fn is_ssh_scheme(scheme: &str) -> bool {
    let scheme = scheme.to_ascii_lowercase();
    matches!(scheme.as_str(), "ssh" | "git+ssh" | "ssh+git")
}

/// The TCP port of an SSH URL (`ssh://[user@]host[:port]/path`, or scp-like
/// `[user@]host:path`, which always means port 22).
///
/// libgit2 tells the certificate callback only the host name, but known_hosts keys a
/// non-standard port as `[host]:port`, so the port must come from the URL itself.
pub(crate) fn ssh_port(url: &str) -> u16 {
    const DEFAULT: u16 = 22;
    let Some((_, after)) = url.split_once("://") else {
        return DEFAULT;
    };
    let authority = &after[..after.find(ends_authority).unwrap_or(after.len())];
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    // "[::1]:2222" and "host:2222": the port follows the last ':' outside brackets.
    let port = match host_port.rsplit_once(']') {
        Some((_, tail)) => tail.strip_prefix(':'),
        None => host_port.rsplit_once(':').map(|(_, p)| p),
    };
    port.and_then(|p| p.parse().ok()).unwrap_or(DEFAULT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_removed_from_urls_in_any_text() {
        let cases = [
            (
                "https://user:s3cret@example.com/org/repo.git",
                "https://example.com/org/repo.git",
            ),
            (
                "https://ghp_tokenAsUser@example.com/repo",
                "https://example.com/repo",
            ),
            (
                "http://u:p@127.0.0.1:8080/repo.git/info/refs?service=git-upload-pack",
                "http://127.0.0.1:8080/repo.git/info/refs?service=git-upload-pack",
            ),
            (
                "failed to fetch 'https://a:b@h/x' and \"http://c:d@h2\" too",
                "failed to fetch 'https://h/x' and \"http://h2\" too",
            ),
            (
                "ssh://git:pw@host:2222/repo.git",
                "ssh://git@host:2222/repo.git",
            ),
            ("ssh://git@host/repo.git", "ssh://git@host/repo.git"),
            ("git@github.com:org/repo.git", "git@github.com:org/repo.git"),
            ("https://example.com/a@b", "https://example.com/a@b"),
            ("https://u:p@w@rd@host/x", "https://host/x"),
            ("no url here", "no url here"),
            ("file:///tmp/repo.git", "file:///tmp/repo.git"),
        ];
        for (raw, want) in cases {
            assert_eq!(scrub_url(raw), want, "{raw}");
        }
    }

    #[test]
    fn ssh_port_comes_from_the_url() {
        let cases = [
            ("ssh://git@host:2222/repo.git", 2222),
            ("ssh://host/repo.git", 22),
            ("ssh://git@[::1]:2200/repo", 2200),
            ("ssh://git@[::1]/repo", 22),
            ("git@github.com:org/repo.git", 22),
        ];
        for (url, want) in cases {
            assert_eq!(ssh_port(url), want, "{url}");
        }
    }
}
