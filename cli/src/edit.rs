//! Editing a JSON document in the user's editor (`$EDITOR`, then `$VISUAL`, then `vi`).
//!
//! The file opens with a few `//` comment lines on top: what is being edited and, after a failed
//! upload, why it failed. Every line starting with `//` is removed before the JSON is read (JSON
//! itself has no such line). Saving the file unchanged, empty, or with the document as it was
//! downloaded cancels the edit.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use serde_json::Value;
use tempfile::NamedTempFile;

/// What the user left in the file.
#[derive(Debug)]
pub enum Edited {
    /// Saved unchanged, empty, or with the original document: nothing to upload.
    Unchanged,
    /// Text that is not a JSON document: the parser's message.
    Invalid(String),
    Document(Value),
}

/// A document being edited in a temporary file, kept between rounds of the editor.
pub struct DocumentEditor {
    file: NamedTempFile,
    original: Value,
    /// The document text the editor shows, without the comment lines.
    body: String,
}

impl DocumentEditor {
    pub fn new(document: &Value) -> anyhow::Result<Self> {
        let file = tempfile::Builder::new()
            .prefix("gantry-")
            .suffix(".json")
            .tempfile()
            .context("creating a temporary file to edit")?;
        let body = serde_json::to_string_pretty(document).context("formatting the document")?;
        Ok(Self {
            file,
            original: document.clone(),
            body: body + "\n",
        })
    }

    /// Opens the editor on the document with `notice` as comment lines on top, and reads what
    /// was saved.
    pub async fn open(&mut self, notice: &[String]) -> anyhow::Result<Edited> {
        let shown = compose(notice, &self.body);
        std::fs::write(self.file.path(), &shown).context("writing the file to edit")?;
        run_editor(self.file.path().to_owned()).await?;
        let saved = std::fs::read_to_string(self.file.path()).context("reading the edited file")?;
        if saved == shown {
            return Ok(Edited::Unchanged);
        }
        self.body = strip_comments(&saved);
        if self.body.trim().is_empty() {
            return Ok(Edited::Unchanged);
        }
        Ok(match serde_json::from_str::<Value>(&self.body) {
            Ok(document) if document == self.original => Edited::Unchanged,
            Ok(document) => Edited::Document(document),
            Err(e) => Edited::Invalid(e.to_string()),
        })
    }

    /// Keeps the user's last text in a file that outlives the command; returns its path.
    pub fn keep(self) -> anyhow::Result<PathBuf> {
        let (mut file, path) = self.file.keep().context("keeping the edited file")?;
        file.set_len(0).context("rewriting the edited file")?;
        file.write_all(self.body.as_bytes())
            .context("rewriting the edited file")?;
        Ok(path)
    }
}

/// `notice` as `// ` lines, then the document.
pub fn compose(notice: &[String], body: &str) -> String {
    let mut text: String = notice
        .iter()
        .flat_map(|n| n.lines())
        .map(|line| format!("// {line}\n"))
        .collect();
    text.push_str(body);
    text
}

/// The text without its `//` lines.
pub fn strip_comments(text: &str) -> String {
    text.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .map(|line| format!("{line}\n"))
        .collect()
}

/// Runs the editor on `path` and waits for it. `$EDITOR` may carry arguments
/// (`code --wait`), so it is run by the shell with the path as its argument.
async fn run_editor(path: PathBuf) -> anyhow::Result<()> {
    let editor = ["EDITOR", "VISUAL"]
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .find(|value| !value.trim().is_empty())
        .unwrap_or_else(|| "vi".to_owned());
    let status = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(&path)
        .status()
        .await
        .with_context(|| format!("starting the editor `{editor}`"))?;
    if !status.success() {
        bail!("the editor `{editor}` exited with {status}; nothing was uploaded");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_become_comment_lines_that_are_stripped_again() {
        let text = compose(&["first\nsecond".to_owned()], "{\n  \"a\": 1\n}\n");
        assert!(text.starts_with("// first\n// second\n{"));
        assert_eq!(strip_comments(&text), "{\n  \"a\": 1\n}\n");
    }
}
