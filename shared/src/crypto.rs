//! Encryption at rest (DESIGN §4): AES-256-GCM with a random 96-bit nonce per message, the key id
//! stored with the ciphertext, and caller-supplied associated data binding a ciphertext to its row
//! (owner id, version) so a blob copied to another row does not decrypt.
//!
//! Envelope: `0x01 | key id length (u8) | key id | nonce (12) | ciphertext + tag`.

use std::collections::HashMap;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use secrecy::ExposeSecret;

use crate::settings::EncryptionSettings;

const ENVELOPE_VERSION: u8 = 1;
const NONCE_LEN: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("key {0:?} is not a base64-encoded 32-byte key")]
    BadKey(String),
    #[error("the ciphertext is malformed")]
    Malformed,
    #[error("the ciphertext was encrypted with key {0:?}, which is not configured")]
    UnknownKey(String),
    #[error("the ciphertext failed authentication (tampered with, or bound to another record)")]
    Tampered,
    #[error("the plaintext is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// The configured keys: the current one encrypts, all of them decrypt.
#[derive(Clone)]
pub struct Cipher {
    current: String,
    keys: HashMap<String, Aes256Gcm>,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cipher")
            .field("current", &self.current)
            .finish_non_exhaustive()
    }
}

fn parse_key(id: &str, b64: &str) -> Result<Aes256Gcm, CryptoError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| CryptoError::BadKey(id.to_owned()))?;
    Aes256Gcm::new_from_slice(&bytes).map_err(|_| CryptoError::BadKey(id.to_owned()))
}

impl Cipher {
    pub fn from_settings(settings: &EncryptionSettings) -> Result<Self, CryptoError> {
        if settings.key_id.is_empty() || settings.key_id.len() > 255 {
            return Err(CryptoError::BadKey(settings.key_id.clone()));
        }
        let mut keys = HashMap::new();
        keys.insert(
            settings.key_id.clone(),
            parse_key(&settings.key_id, settings.key.expose_secret())?,
        );
        for (id, key) in &settings.previous_keys {
            keys.insert(id.clone(), parse_key(id, key.expose_secret())?);
        }
        Ok(Self {
            current: settings.key_id.clone(),
            keys,
        })
    }

    /// The id of the key new ciphertexts are sealed with.
    pub fn current_key_id(&self) -> &str {
        &self.current
    }

    pub fn encrypt(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let key = &self.keys[&self.current];
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let sealed = key
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let id = self.current.as_bytes();
        let mut out = Vec::with_capacity(2 + id.len() + NONCE_LEN + sealed.len());
        out.push(ENVELOPE_VERSION);
        out.push(id.len() as u8);
        out.extend_from_slice(id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    pub fn decrypt(&self, envelope: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let (id, nonce, sealed) = split_envelope(envelope).ok_or(CryptoError::Malformed)?;
        let key = self
            .keys
            .get(id)
            .ok_or_else(|| CryptoError::UnknownKey(id.to_owned()))?;
        key.decrypt(Nonce::from_slice(nonce), Payload { msg: sealed, aad })
            .map_err(|_| CryptoError::Tampered)
    }

    pub fn encrypt_json(&self, value: &serde_json::Value, aad: &[u8]) -> Vec<u8> {
        self.encrypt(value.to_string().as_bytes(), aad)
    }

    pub fn decrypt_json(
        &self,
        envelope: &[u8],
        aad: &[u8],
    ) -> Result<serde_json::Value, CryptoError> {
        Ok(serde_json::from_slice(&self.decrypt(envelope, aad)?)?)
    }

    pub fn encrypt_str(&self, value: &str, aad: &[u8]) -> Vec<u8> {
        self.encrypt(value.as_bytes(), aad)
    }

    pub fn decrypt_str(&self, envelope: &[u8], aad: &[u8]) -> Result<String, CryptoError> {
        String::from_utf8(self.decrypt(envelope, aad)?).map_err(|_| CryptoError::Malformed)
    }
}

/// The id of the key an envelope was sealed with (`None` when the envelope is malformed). Lets a
/// key rotation skip what is already under the current key.
pub fn envelope_key_id(envelope: &[u8]) -> Option<&str> {
    split_envelope(envelope).map(|(id, ..)| id)
}

/// An envelope's key id, nonce and ciphertext (with tag); `None` when it is malformed.
fn split_envelope(envelope: &[u8]) -> Option<(&str, &[u8], &[u8])> {
    let (&version, rest) = envelope.split_first()?;
    let (&id_len, rest) = rest.split_first()?;
    if version != ENVELOPE_VERSION || rest.len() < id_len as usize + NONCE_LEN {
        return None;
    }
    let (id, rest) = rest.split_at(id_len as usize);
    let (nonce, sealed) = rest.split_at(NONCE_LEN);
    Some((std::str::from_utf8(id).ok()?, nonce, sealed))
}

/// Associated data of a secret's key/value map.
pub fn secret_aad(name: &str) -> Vec<u8> {
    format!("secret:{name}").into_bytes()
}

/// Associated data of a properties document: the properties id and the version.
pub fn properties_aad(properties_id: uuid::Uuid, version: i64) -> Vec<u8> {
    format!("properties:{properties_id}:{version}").into_bytes()
}

/// Associated data of a git remote credential column.
pub fn git_remote_aad(remote_id: uuid::Uuid, column: &str) -> Vec<u8> {
    format!("git_remote:{remote_id}:{column}").into_bytes()
}

/// Associated data of a step's merged properties.
pub fn step_properties_aad(step_id: uuid::Uuid) -> Vec<u8> {
    format!("step:{step_id}:properties").into_bytes()
}

/// Associated data of an attempt's sealed `step_result.json` (the `step_result_v1` message): a
/// result copied to another step or attempt does not open.
pub fn step_result_aad(step_id: uuid::Uuid, attempt: i32) -> Vec<u8> {
    format!("step:{step_id}:result:{attempt}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn cipher(id: &str, key: &[u8; 32]) -> Cipher {
        let b64 = base64::engine::general_purpose::STANDARD.encode(key);
        Cipher::from_settings(&EncryptionSettings {
            key_id: id.into(),
            key: SecretString::from(b64),
            previous_keys: Default::default(),
        })
        .unwrap()
    }

    #[test]
    fn a_round_trip_returns_the_plaintext_and_hides_it() {
        let c = cipher("k1", &[7; 32]);
        let sealed = c.encrypt(b"canary-secret", b"row-1");
        assert!(!sealed.windows(6).any(|w| w == b"canary"));
        assert_eq!(c.decrypt(&sealed, b"row-1").unwrap(), b"canary-secret");
    }

    #[test]
    fn a_flipped_byte_or_other_associated_data_is_detected() {
        let c = cipher("k1", &[7; 32]);
        let mut sealed = c.encrypt(b"value", b"row-1");
        assert!(matches!(
            c.decrypt(&sealed, b"row-2"),
            Err(CryptoError::Tampered)
        ));
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert!(matches!(
            c.decrypt(&sealed, b"row-1"),
            Err(CryptoError::Tampered)
        ));
    }

    #[test]
    fn an_unknown_key_id_is_reported() {
        let sealed = cipher("old", &[1; 32]).encrypt(b"v", b"");
        assert!(
            matches!(cipher("new", &[2; 32]).decrypt(&sealed, b""), Err(CryptoError::UnknownKey(id)) if id == "old")
        );
    }
}
