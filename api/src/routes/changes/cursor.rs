//! The opaque `page[after]` cursor of the change list: the (created_at, id) of the last change
//! of a page, which is the list's sort key.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ChangeCursor {
    pub created_at: DateTime<Utc>,
    pub id: Uuid,
}

impl ChangeCursor {
    /// PostgreSQL keeps microseconds, so the cursor does too and compares exactly.
    pub fn encode(&self) -> String {
        hex::encode(format!(
            "{}:{}",
            self.created_at.timestamp_micros(),
            self.id
        ))
    }

    pub fn decode(text: &str) -> Result<Self, ApiError> {
        let invalid = || {
            ApiError::bad_parameter(
                "page[after]",
                "`page[after]` must be a cursor from a `next` link",
            )
        };
        let bytes = hex::decode(text).map_err(|_| invalid())?;
        let decoded = String::from_utf8(bytes).map_err(|_| invalid())?;
        let (micros, id) = decoded.split_once(':').ok_or_else(invalid)?;
        let created_at = micros
            .parse()
            .ok()
            .and_then(DateTime::from_timestamp_micros)
            .ok_or_else(invalid)?;
        let id = Uuid::parse_str(id).map_err(|_| invalid())?;
        Ok(Self { created_at, id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_garbage_is_refused() {
        let cursor = ChangeCursor {
            created_at: DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap(),
            id: Uuid::now_v7(),
        };
        assert_eq!(ChangeCursor::decode(&cursor.encode()).unwrap(), cursor);
        for bad in [
            "",
            "zz",
            &hex::encode("12:not-a-uuid"),
            &hex::encode("x:00000000-0000-0000-0000-000000000000"),
        ] {
            assert!(ChangeCursor::decode(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
