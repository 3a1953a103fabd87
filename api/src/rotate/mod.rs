//! `gantry-api rotate-key`: re-encrypts every ciphertext at rest under the current key
//! (`encryption.key_id`), decrypting with any configured key (the old one sits in
//! `encryption.previous_keys` meanwhile) and keeping each ciphertext's associated data.
//!
//! Each table is walked in key order, [`BATCH_SIZE`] rows per transaction, so a big table never
//! sits in one long transaction; each batch locks its rows (`FOR UPDATE`), so a concurrent writer
//! waits and then writes its own value instead of being overwritten with the old one. Rows
//! already under the current key are skipped, so a second run re-encrypts nothing and a run that
//! stopped resumes where it failed. Every process must already seal with the new key (deploy the
//! settings first), or its writes would bring the old key back.

mod report;
mod rows;
mod run;

pub use report::{RotationError, RotationFailure, RotationReport, RowKey, Table, TableReport};
pub use run::{BATCH_SIZE, left_under_other_keys, rotate_keys, run};
