//! `gantry project|environment edit-properties`: downloads the latest properties, lets the user
//! edit them in `$EDITOR` and uploads them as an edit of the version downloaded. Invalid JSON or a
//! refused document reopens the editor with the reason on top; a concurrent edit (412) too, but
//! then nothing more is uploaded: the command must be re-run on the latest version.

use anyhow::Context as _;
use reqwest::StatusCode;
use serde_json::Value;

use super::Context;
use super::documents::{Owner, upload};
use crate::client::ApiError;
use crate::edit::{DocumentEditor, Edited};

pub async fn run(context: &Context, owner: Owner<'_>) -> anyhow::Result<()> {
    let id = owner.properties_id(context).await?;
    let current = context.client.get(&format!("/api/properties/{id}")).await?;
    let attributes = &current["data"]["attributes"];
    let version = attributes["version"]
        .as_i64()
        .context("the properties have no version")?;
    let mut notice = vec![format!(
        "Properties of {}, version {version}. Lines starting with // are ignored;\n\
         save the file unchanged or empty to cancel.",
        owner.describe()
    )];
    let mut session = Session {
        context,
        owner,
        id,
        version,
        editor: DocumentEditor::new(&attributes["data"])?,
        conflict: false,
    };
    loop {
        notice = match session.editor.open(&notice).await? {
            Edited::Unchanged => {
                session.cancelled();
                return Ok(());
            }
            _ if session.conflict => return Err(session.not_saved()),
            Edited::Invalid(reason) => vec![format!("ERROR: the file is not valid JSON: {reason}")],
            Edited::Document(document) => match session.upload(document).await? {
                Some(refusal) => refusal,
                None => return Ok(()),
            },
        };
    }
}

struct Session<'a> {
    context: &'a Context,
    owner: Owner<'a>,
    id: String,
    /// The version downloaded: every upload is an edit of it.
    version: i64,
    editor: DocumentEditor,
    /// The properties moved on since `version`: nothing more is uploaded.
    conflict: bool,
}

impl Session<'_> {
    fn rerun(&self) -> String {
        self.owner.command("edit-properties")
    }

    /// Uploads the document; `None` once saved, else the notice to reopen the editor with.
    async fn upload(&mut self, document: Value) -> anyhow::Result<Option<Vec<String>>> {
        let error = match upload(self.context, &self.id, document, Some(self.version)).await {
            Ok(saved) => {
                let version = &saved["data"]["attributes"]["version"];
                let what = self.owner.describe();
                let message = format!("the properties of {what} saved as version {version}");
                self.context.output.done(&saved["data"], &message);
                return Ok(None);
            }
            Err(error) => error,
        };
        let Some(refusal) = error.downcast_ref::<ApiError>() else {
            return Err(error);
        };
        match refusal.status {
            StatusCode::PRECONDITION_FAILED => {
                self.conflict = true;
                Ok(Some(vec![
                    format!("ERROR: {}", refusal.detail),
                    format!(
                        "These edits cannot be saved: re-run `{}` to fetch the latest version.\n\
                         Copy your edits elsewhere, then quit without changing the file.",
                        self.rerun()
                    ),
                ]))
            }
            StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => {
                Ok(Some(vec![format!("ERROR: {}", located(refusal))]))
            }
            _ => Err(error),
        }
    }

    fn cancelled(&self) {
        let rerun = match self.conflict {
            true => format!("; re-run `{}` to edit the latest version", self.rerun()),
            false => String::new(),
        };
        eprintln!("edit cancelled: nothing was saved{rerun}");
    }

    /// Edits made after a conflict: kept in a file, never uploaded.
    fn not_saved(self) -> anyhow::Error {
        let rerun = self.rerun();
        match self.editor.keep() {
            Ok(kept) => anyhow::anyhow!(
                "not saved: the properties changed since version {} was downloaded; your edits \
                 are kept in {}; re-run `{rerun}` to fetch the latest version and reapply them",
                self.version,
                kept.display()
            ),
            Err(error) => error,
        }
    }
}

/// The API's detail, with where in the document the problem is.
fn located(refusal: &ApiError) -> String {
    let place = refusal
        .pointer
        .as_deref()
        .and_then(|p| p.strip_prefix("/data/attributes/data"))
        .filter(|p| !p.is_empty());
    match place {
        Some(place) => format!("{} (at {place})", refusal.detail),
        None => refusal.detail.clone(),
    }
}
