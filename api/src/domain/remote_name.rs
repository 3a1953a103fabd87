//! The name of a Git remote: like a code (lowercase letters, digits, `_`) but `-` is allowed too.

use super::Invalid;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteName(String);

impl RemoteName {
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        super::text::check_length(value, 1, 50)?;
        let allowed =
            |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-';
        if !value.chars().all(allowed) {
            return Err(Invalid(
                "may contain only lowercase letters, digits, `_` and `-`".into(),
            ));
        }
        super::text::check_no_leading_dash(value)?;
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_names_allow_dashes_but_not_a_leading_one() {
        assert!(RemoteName::parse("origin").is_ok());
        assert!(RemoteName::parse("my-fork_2").is_ok());
        for bad in ["", "-x", "Origin", "a b", "a/b", &"a".repeat(51)] {
            assert!(RemoteName::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
