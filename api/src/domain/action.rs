//! The action a change runs: a name from the repository's actions manifest.

use super::Invalid;

/// The action run when a change names none.
pub const DEFAULT_ACTION: &str = "default";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionName(String);

impl ActionName {
    /// Actions become arguments of `gantry-runner run <action>`.
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        super::text::check_argument(value, 200)?;
        Ok(Self(value.to_owned()))
    }

    pub fn default_action() -> Self {
        Self(DEFAULT_ACTION.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_are_non_empty_words_of_at_most_200_characters() {
        assert!(ActionName::parse("sample:hello_world_1:run").is_ok());
        for bad in ["", "a b", "-x", &"a".repeat(201)] {
            assert!(ActionName::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
