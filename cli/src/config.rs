//! The configuration file, `$XDG_CONFIG_HOME/gantry/config.toml` (`~/.config/gantry/config.toml`
//! without XDG_CONFIG_HOME), and how the target API is chosen:
//!
//! ```toml
//! current_profile = "default"
//!
//! [profiles.default]
//! url = "http://127.0.0.1:3000"
//! token = "…"
//! ```
//!
//! The profile is `--profile`, else GANTRY_PROFILE, else `current_profile`, else `default`. The
//! URL and the token are the flags (`--url`, `--token`), else GANTRY_URL / GANTRY_TOKEN, else the
//! profile's. The file holds tokens, so it is written with mode 0600.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::cli::GlobalArgs;

pub const DEFAULT_URL: &str = "http://127.0.0.1:3000";
pub const DEFAULT_PROFILE: &str = "default";

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_profile: Option<String>,
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// The API a command talks to.
#[derive(Debug)]
pub struct Target {
    pub profile: String,
    pub url: String,
    pub token: Option<String>,
}

impl Target {
    /// The token, or the error naming the three ways to give one.
    pub fn token(&self) -> anyhow::Result<&str> {
        match self.token.as_deref() {
            Some(token) if !token.is_empty() => Ok(token),
            _ => bail!(
                "no API token: pass --token, set GANTRY_TOKEN, or store one with `gantry login` \
                 (profile `{}`)",
                self.profile
            ),
        }
    }
}

/// Where the configuration file is.
pub fn path() -> anyhow::Result<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => std::env::home_dir()
            .filter(|h| !h.as_os_str().is_empty())
            .context("neither XDG_CONFIG_HOME nor HOME is set: cannot find the configuration")?
            .join(".config"),
    };
    Ok(base.join("gantry").join("config.toml"))
}

impl ConfigFile {
    /// The file at `path`, or an empty configuration when there is none.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        toml::from_str(&text)
            .with_context(|| format!("{} is not a valid configuration", path.display()))
    }

    /// Writes the file readable by its owner only (0600), replacing any file there atomically,
    /// so a token is never readable by others, not even for a moment.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let dir = path
            .parent()
            .context("the configuration path has no directory")?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let text = toml::to_string_pretty(self).context("serialising the configuration")?;
        // A NamedTempFile is created with mode 0600.
        let mut file = tempfile::NamedTempFile::new_in(dir)
            .with_context(|| format!("creating a file in {}", dir.display()))?;
        file.write_all(text.as_bytes())
            .context("writing the configuration")?;
        file.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))
            .context("restricting the configuration to its owner")?;
        file.persist(path)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }

    /// The profile a command uses: `--profile` / GANTRY_PROFILE, else the current one.
    pub fn profile_name(&self, global: &GlobalArgs) -> String {
        global
            .profile
            .clone()
            .or_else(|| self.current_profile.clone())
            .unwrap_or_else(|| DEFAULT_PROFILE.to_owned())
    }

    /// The target API: flags and environment over the profile over the defaults.
    pub fn target(&self, global: &GlobalArgs) -> Target {
        let profile = self.profile_name(global);
        let stored = self.profiles.get(&profile).cloned().unwrap_or_default();
        Target {
            url: global
                .url
                .clone()
                .or(stored.url)
                .unwrap_or_else(|| DEFAULT_URL.to_owned()),
            token: global.token.clone().or(stored.token),
            profile,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::Format;

    fn global(url: Option<&str>, profile: Option<&str>) -> GlobalArgs {
        GlobalArgs {
            url: url.map(str::to_owned),
            token: None,
            profile: profile.map(str::to_owned),
            output: Format::Table,
        }
    }

    #[test]
    fn flags_win_over_the_profile_which_wins_over_the_default() {
        let file: ConfigFile = toml::from_str(
            "current_profile = \"prod\"\n[profiles.prod]\nurl = \"https://prod\"\ntoken = \"t\"\n",
        )
        .unwrap();
        let target = file.target(&global(None, None));
        assert_eq!(
            (target.url.as_str(), target.token.as_deref()),
            ("https://prod", Some("t"))
        );
        assert_eq!(file.target(&global(Some("http://x"), None)).url, "http://x");
        let other = file.target(&global(None, Some("dev")));
        assert_eq!((other.url.as_str(), other.token), (DEFAULT_URL, None));
    }

    #[test]
    fn a_missing_token_names_the_three_ways_to_give_one() {
        let target = ConfigFile::default().target(&global(None, None));
        let message = target.token().unwrap_err().to_string();
        for way in ["--token", "GANTRY_TOKEN", "gantry login"] {
            assert!(message.contains(way), "{message}");
        }
    }
}
