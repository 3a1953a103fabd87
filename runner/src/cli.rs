//! The command line. Locations come from options or the environment, read here and nowhere else.

use clap::{Args, Parser, Subcommand, ValueEnum};
use gantry_shared::properties::{FileFormat, Owner};
use gantry_shared::protocol::{CONTAINER_HOME, ExecutionStrategy, SECRET_NAMES_ENV};
use std::path::PathBuf;

/// The step runner inside every Gantry step container.
#[derive(Debug, Parser)]
#[command(name = "gantry-runner", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub locations: Locations,
    #[command(subcommand)]
    pub command: Commands,
}

/// Where things are. The defaults are the container layout; tests and local use override them.
#[derive(Debug, Args)]
#[command(next_help_heading = "Locations")]
pub struct Locations {
    /// The repository checkout and the runner's home.
    #[arg(long, global = true, env = "GANTRY_HOME", default_value = CONTAINER_HOME)]
    pub home: PathBuf,
    /// The protocol directory [default: <home>/.gantry].
    #[arg(long, global = true, env = "GANTRY_PROTOCOL_DIR")]
    pub protocol_dir: Option<PathBuf>,
    /// The editable properties files [default: <protocol dir>/properties].
    #[arg(long, global = true, env = "GANTRY_PROPERTIES_DIR")]
    pub properties_dir: Option<PathBuf>,
    /// The repository folder holding the manifest and property files, relative to the home.
    #[arg(
        long,
        global = true,
        env = "GANTRY_REPO_FOLDER",
        default_value = ".gantry"
    )]
    pub repo_folder: PathBuf,
    /// Environment variables holding secrets, never overridden by `gantry.env`.
    #[arg(long, global = true, hide = true, env = SECRET_NAMES_ENV, value_delimiter = ',')]
    pub secret_names: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Run a step: prepare properties, files and env, run the prerequisites and the action, and
    /// write step_result.json when they succeed.
    Run { action: String },
    /// Wait, started but idle, until the worker that made this container gives it a step: one
    /// line of JSON on stdin (the action and its variables); then `run` it in a child process
    /// while watching stdin, whose end means that worker is gone and stops the step. Without a
    /// step before stdin ends, exit unused (86).
    Park,
    /// Show or edit the step's project and environment properties.
    #[command(subcommand)]
    Properties(PropertiesCommand),
    /// Store a file in an owner's `gantry.files`, keeping its mode.
    StoreFile {
        owner: Owner,
        path: String,
        #[arg(long, value_enum, default_value_t = StoredFormat::Raw)]
        format: StoredFormat,
    },
    /// Remove a file from an owner's `gantry.files`.
    RemoveFile { owner: Owner, path: String },
    /// Add child steps to run after this step.
    #[command(subcommand)]
    Child(ChildCommand),
    /// Run a command with the `gantry.env` variables (in a step or a Dockerfile `RUN`).
    Exec {
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum PropertiesCommand {
    /// Set the value at a JSON pointer; the value is JSON, or a string when it is not valid JSON,
    /// or read from stdin when omitted. Missing intermediate objects are created.
    Set {
        owner: Owner,
        pointer: String,
        value: Option<String>,
    },
    /// Delete the value at a JSON pointer.
    Delete { owner: Owner, pointer: String },
    /// Print the merged, project or environment properties.
    Show {
        #[arg(value_enum, default_value_t = View::Merged)]
        view: View,
    },
}

#[derive(Debug, Subcommand)]
pub enum ChildCommand {
    /// Append child steps (actions of the manifest, or `wait`).
    Add {
        #[arg(required = true)]
        actions: Vec<String>,
        /// Run the children in parallel.
        #[arg(long, conflicts_with = "sequential")]
        parallel: bool,
        /// Run the children one after the other.
        #[arg(long)]
        sequential: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum View {
    Merged,
    Project,
    Environment,
}

/// The formats `store-file` can store a file in (JSON files are stored as text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StoredFormat {
    Raw,
    Base64,
}

impl From<StoredFormat> for FileFormat {
    fn from(format: StoredFormat) -> Self {
        match format {
            StoredFormat::Raw => FileFormat::Raw,
            StoredFormat::Base64 => FileFormat::Base64,
        }
    }
}

/// The strategy chosen by `child add` flags; none keeps the action's `run_as`.
pub fn strategy(parallel: bool, sequential: bool) -> Option<ExecutionStrategy> {
    match (parallel, sequential) {
        (true, _) => Some(ExecutionStrategy::Parallel),
        (_, true) => Some(ExecutionStrategy::Sequential),
        _ => None,
    }
}
