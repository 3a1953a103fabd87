//! A Git revision a change runs: a branch, tag or commit, resolved later by the planner.

use super::Invalid;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitRev(String);

impl GitRev {
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        super::text::check_length(value, 1, 255)?;
        if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Invalid(
                "must not contain whitespace or control characters".into(),
            ));
        }
        // A revision is passed to `git` as an argument: a leading `-` would read as an option.
        if value.starts_with('-') {
            return Err(Invalid("must not start with `-`".into()));
        }
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
    fn revisions_are_single_words_of_at_most_255_characters() {
        assert!(GitRev::parse("main").is_ok());
        assert!(GitRev::parse("refs/tags/v1.2").is_ok());
        for bad in ["", "a b", "a\tb", "--upload-pack=x", &"a".repeat(256)] {
            assert!(GitRev::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
