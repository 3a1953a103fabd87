//! A Git revision a change runs: a branch, tag or commit, resolved later by the planner.

use super::Invalid;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitRev(String);

impl GitRev {
    /// A revision is passed to `git` as an argument.
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        super::text::check_argument(value, 255)?;
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
