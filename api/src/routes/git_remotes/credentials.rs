//! Encrypting a remote's credentials: each ciphertext is bound to its remote and column, so a
//! blob copied to another row or column does not decrypt.

use gantry_shared::crypto::{Cipher, git_remote_aad};
use uuid::Uuid;

use crate::domain::Secret;

pub(super) const PASSWORD: &str = "password";
pub(super) const SSH_KEY_DATA: &str = "ssh_key_data";

/// The ciphertext of `secret` for column `column` of remote `id`.
pub(super) fn seal(cipher: &Cipher, id: Uuid, column: &str, secret: &Secret) -> Vec<u8> {
    cipher.encrypt_str(secret.expose(), &git_remote_aad(id, column))
}
