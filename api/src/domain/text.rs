//! Free-text attributes: names, descriptions, Git user names and credentials.

/// Why a value is refused. The message reads after the attribute's name: "name must be …".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

pub(crate) fn check_length(value: &str, min: usize, max: usize) -> Result<(), Invalid> {
    let length = value.chars().count();
    match (min..=max).contains(&length) {
        true => Ok(()),
        false if min == 0 => Err(Invalid(format!("must be at most {max} characters long"))),
        false => Err(Invalid(format!("must be {min} to {max} characters long"))),
    }
}

pub(crate) fn check_single_line(value: &str) -> Result<(), Invalid> {
    match value.chars().any(char::is_control) {
        true => Err(Invalid("must not contain control characters".into())),
        false => Ok(()),
    }
}

/// One word: no whitespace, no control characters.
pub(crate) fn check_word(value: &str) -> Result<(), Invalid> {
    match value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        true => Err(Invalid(
            "must not contain whitespace or control characters".into(),
        )),
        false => Ok(()),
    }
}

/// Values that end up on a command line (`git`, `gantry-runner run`) must not read as an option.
pub(crate) fn check_no_leading_dash(value: &str) -> Result<(), Invalid> {
    match value.starts_with('-') {
        true => Err(Invalid("must not start with `-`".into())),
        false => Ok(()),
    }
}

/// A command-line argument: one word of 1 to `max` characters that does not read as an option.
pub(crate) fn check_argument(value: &str, max: usize) -> Result<(), Invalid> {
    check_length(value, 1, max)?;
    check_word(value)?;
    check_no_leading_dash(value)
}

fn check_no_nul(value: &str) -> Result<(), Invalid> {
    match value.contains('\0') {
        true => Err(Invalid("must not contain NUL characters".into())),
        false => Ok(()),
    }
}

/// A display name: 1–200 characters on one line, not blank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name(String);

impl Name {
    pub fn parse(value: String) -> Result<Self, Invalid> {
        check_length(&value, 1, 200)?;
        check_single_line(&value)?;
        if value.trim().is_empty() {
            return Err(Invalid("must not be blank".into()));
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A description: at most 4000 characters (line breaks allowed, NUL bytes not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description(String);

impl Description {
    pub fn parse(value: String) -> Result<Self, Invalid> {
        check_length(&value, 0, 4000)?;
        check_no_nul(&value)?;
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The user name of a Git remote: 1–200 characters on one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserName(String);

impl UserName {
    pub fn parse(value: String) -> Result<Self, Invalid> {
        check_length(&value, 1, 200)?;
        check_single_line(&value)?;
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A credential (password or SSH private key): 1–65536 characters, without NUL. Its `Debug`
/// never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn parse(value: String) -> Result<Self, Invalid> {
        check_length(&value, 1, 65536)?;
        check_no_nul(&value)?;
        Ok(Self(value))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(****)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_be_short_single_line_and_not_blank() {
        assert!(Name::parse("Demo Project".into()).is_ok());
        assert!(Name::parse("x".repeat(200)).is_ok());
        for bad in ["", "   ", "a\nb", &"x".repeat(201)] {
            assert!(Name::parse(bad.into()).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn secrets_are_not_shown_by_debug() {
        let secret = Secret::parse("hunter2".into()).unwrap();
        assert!(!format!("{secret:?}").contains("hunter2"));
    }
}
