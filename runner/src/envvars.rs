//! The environment of the action's processes: `gantry.env` plus the protocol variables.

use crate::paths::Paths;
use gantry_shared::protocol::StepContext;
use std::collections::BTreeMap;

/// The variables to add to the inherited environment of an action's process.
///
/// `gantry.env` values are skipped for names in `secret_names`, the container variables the worker
/// filled from the secret store: a secret wins over a property of the same name. The protocol
/// variables come last, so a property cannot fake them.
pub fn step_env(
    paths: &Paths,
    context: &StepContext,
    action: &str,
    properties_env: BTreeMap<String, String>,
    secret_names: &[String],
) -> BTreeMap<String, String> {
    let mut env = without_secrets(properties_env, secret_names);
    let info = &context.context;
    let protocol = [
        ("GANTRY_CHANGE_ID", info.change_id().map(str::to_owned)),
        ("GANTRY_STEP_ID", info.step_id().map(str::to_owned)),
        ("GANTRY_ACTION", Some(action.to_owned())),
        ("GANTRY_METADATA", Some(info.metadata().to_string())),
        ("GANTRY_HOME", Some(path_text(&paths.home))),
        ("GANTRY_PROTOCOL_DIR", Some(path_text(&paths.protocol_dir))),
        (
            "GANTRY_PROPERTIES_DIR",
            Some(path_text(&paths.properties_dir)),
        ),
    ];
    for (name, value) in protocol {
        if let Some(value) = value {
            env.insert(name.to_owned(), value);
        }
    }
    env
}

/// Drops the variables whose names are secrets, saying so (the name is not secret, the value is).
pub fn without_secrets(
    mut env: BTreeMap<String, String>,
    secret_names: &[String],
) -> BTreeMap<String, String> {
    for name in secret_names {
        if env.remove(name).is_some() {
            eprintln!("===> Property gantry.env.{name} is ignored: a secret of the same name wins");
        }
    }
    env
}

fn path_text(path: &std::path::Path) -> String {
    path.to_string_lossy().into_owned()
}
