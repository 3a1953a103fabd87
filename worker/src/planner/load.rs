//! What the planner reads about a change, with its SQL.

use deadpool_postgres::GenericClient;
use gantry_shared::crypto::{Cipher, git_remote_aad};
use uuid::Uuid;

use crate::git::Remote;

pub struct ChangeToPlan {
    pub id: Uuid,
    pub environment_id: Uuid,
    pub git_rev: String,
    pub action: String,
    pub remote: Remote,
}

/// The change if it is still `initializing`, with its remote's credentials decrypted.
pub async fn change_to_plan(
    client: &impl GenericClient,
    cipher: &Cipher,
    id: Uuid,
) -> anyhow::Result<Option<ChangeToPlan>> {
    let row = client
        .query_opt(
            "SELECT c.environment_id, c.git_rev, c.action, r.id, r.url, r.username, r.password, r.ssh_key_data \
             FROM changes c JOIN git_remotes r ON r.project_id = c.project_id AND r.name = c.git_remote_name \
             WHERE c.id = $1 AND c.status_code = 'initializing'",
            &[&id],
        )
        .await?;
    let Some(row) = row else { return Ok(None) };
    let remote_id: Uuid = row.get(3);
    Ok(Some(ChangeToPlan {
        id,
        environment_id: row.get(0),
        git_rev: row.get(1),
        action: row.get(2),
        remote: remote(
            cipher,
            remote_id,
            row.get(4),
            row.get(5),
            row.get(6),
            row.get(7),
        )?,
    }))
}

/// A remote with its encrypted credentials opened.
pub fn remote(
    cipher: &Cipher,
    id: Uuid,
    url: String,
    user: Option<String>,
    password: Option<Vec<u8>>,
    ssh_key: Option<Vec<u8>>,
) -> anyhow::Result<Remote> {
    let open = |sealed: Option<Vec<u8>>, column: &str| -> anyhow::Result<Option<String>> {
        sealed
            .map(|s| cipher.decrypt_str(&s, &git_remote_aad(id, column)))
            .transpose()
            .map_err(Into::into)
    };
    Ok(Remote {
        url,
        user,
        password: open(password, "password")?,
        ssh_key: open(ssh_key, "ssh_key_data")?,
    })
}

/// Locks the change if it is still `initializing`.
pub async fn lock_initializing(
    client: &impl GenericClient,
    id: Uuid,
) -> Result<bool, tokio_postgres::Error> {
    Ok(client
        .query_opt(
            "SELECT 1 FROM changes WHERE id = $1 AND status_code = 'initializing' FOR UPDATE",
            &[&id],
        )
        .await?
        .is_some())
}
