//! Domain vocabulary shared by the api and the worker: codes and statuses (DESIGN §2).

use serde::{Deserialize, Serialize};

/// A project or environment code: lowercase letters, digits and `_`, 1–50 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Code(String);

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{0}")]
pub struct CodeError(String);

impl Code {
    pub fn parse(value: &str) -> Result<Self, CodeError> {
        if value.is_empty() || value.chars().count() > 50 {
            return Err(CodeError("must be 1 to 50 characters long".into()));
        }
        if !value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(CodeError(
                "may contain only lowercase letters, digits and underscores".into(),
            ));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Code {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! status_enum {
    ($name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s { $($text => Ok($name::$variant),)+ other => Err(format!("unknown status {other:?}")) }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str(self.as_str()) }
        }
    };
}

status_enum!(ChangeStatus {
    Initializing => "initializing",
    Pending => "pending",
    Queued => "queued",
    Running => "running",
    Success => "success",
    Error => "error",
    Cancelled => "cancelled",
});

status_enum!(StepStatus {
    Pending => "pending",
    Queued => "queued",
    Running => "running",
    Success => "success",
    Error => "error",
    Aborted => "aborted",
    Cancelled => "cancelled",
    Waiting => "waiting",
    SystemError => "system_error",
});

impl ChangeStatus {
    pub fn is_final(self) -> bool {
        matches!(
            self,
            ChangeStatus::Success | ChangeStatus::Error | ChangeStatus::Cancelled
        )
    }
}

impl StepStatus {
    pub fn is_final(self) -> bool {
        matches!(
            self,
            StepStatus::Success
                | StepStatus::Error
                | StepStatus::Aborted
                | StepStatus::Cancelled
                | StepStatus::SystemError
        )
    }
}

/// The statuses of an *active* change (DESIGN §2): it uses its project's and environment's
/// properties from planning to its end.
pub const ACTIVE_CHANGE_STATUSES: [&str; 3] = ["pending", "queued", "running"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_accept_lowercase_digits_and_underscores() {
        assert!(Code::parse("demo_1").is_ok());
        assert!(Code::parse(&"a".repeat(50)).is_ok());
    }

    #[test]
    fn codes_refuse_everything_else() {
        for bad in ["", "Demo", "a-b", "a b", "é", &"a".repeat(51)] {
            assert!(Code::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn statuses_round_trip_through_text() {
        for s in [
            "initializing",
            "pending",
            "queued",
            "running",
            "success",
            "error",
            "cancelled",
        ] {
            assert_eq!(s.parse::<ChangeStatus>().unwrap().as_str(), s);
        }
        assert_eq!(
            "system_error".parse::<StepStatus>().unwrap(),
            StepStatus::SystemError
        );
    }
}
