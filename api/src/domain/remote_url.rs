//! Where a Git remote is: an absolute local path, a `file://`, `https://` or `ssh://` URL, or the
//! scp-like `user@host:path`. Other transports are refused: `http://` and `git://` travel in clear,
//! and `ext::` runs arbitrary commands on the worker.

use super::Invalid;

const ACCEPTED: &str = "an absolute path, a file://, https:// or ssh:// URL, or user@host:path";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteUrl(String);

impl RemoteUrl {
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        super::text::check_length(value, 1, 2048)?;
        super::text::check_word(value)?;
        if value.starts_with('/') {
            return Ok(Self(value.to_owned()));
        }
        if let Some((scheme, rest)) = value.split_once("://") {
            check_url(&scheme.to_ascii_lowercase(), rest)?;
            return Ok(Self(value.to_owned()));
        }
        if value.contains("::") {
            return Err(Invalid(format!(
                "uses a transport that is not allowed; use {ACCEPTED}"
            )));
        }
        match is_scp_like(value) {
            true => Ok(Self(value.to_owned())),
            false => Err(Invalid(format!("must be {ACCEPTED}"))),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn check_url(scheme: &str, rest: &str) -> Result<(), Invalid> {
    let authority = rest.split('/').next().unwrap_or("");
    match scheme {
        "file" if rest.starts_with('/') => Ok(()),
        "file" => Err(Invalid("must name an absolute path after file:// (file:///srv/repo.git)".into())),
        "https" | "ssh" if authority.is_empty() => Err(Invalid(format!("must name a host after {scheme}://"))),
        "https" if authority.rsplit_once('@').is_some_and(|(userinfo, _)| userinfo.contains(':')) => Err(Invalid(
            "must not contain a password; set the `password` attribute, which is stored encrypted".into(),
        )),
        "https" | "ssh" => Ok(()),
        other => Err(Invalid(format!("uses the `{other}` scheme, which is not allowed; use {ACCEPTED}"))),
    }
}

fn is_scp_like(value: &str) -> bool {
    let Some((user_host, path)) = value.split_once(':') else {
        return false;
    };
    let Some((user, host)) = user_host.split_once('@') else {
        return false;
    };
    let word = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    };
    word(user) && word(host) && !user.starts_with('-') && !path.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_and_allowed_urls_are_accepted() {
        for good in [
            "/srv/git/demo.git",
            "file:///srv/git/demo.git",
            "https://example.com/org/demo.git",
            "https://token@example.com/demo.git",
            "ssh://git@example.com:2222/demo.git",
            "git@example.com:org/demo.git",
        ] {
            assert!(RemoteUrl::parse(good).is_ok(), "{good:?} was refused");
        }
    }

    #[test]
    fn other_schemes_relative_paths_and_inline_passwords_are_refused() {
        for bad in [
            "http://example.com/demo.git",
            "ftp://example.com/demo.git",
            "git://example.com/demo.git",
            "ext::sh -c touch% /tmp/pwned",
            "ext::ssh",
            "relative/path",
            "https://user:pw@example.com/demo.git",
            "file://relative",
            "https:///nohost",
            "-oProxyCommand=x@host:path",
            "-o@host:path",
            "",
        ] {
            assert!(RemoteUrl::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
