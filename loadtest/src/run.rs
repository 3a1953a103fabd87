//! What a subcommand does: run its scenario(s), print the table (and the JSON unless it goes to a
//! file), and for `bench` write the documents.

use std::path::Path;

use anyhow::Context;
use gantry_shared::settings::Settings;

use crate::bench::{self, BenchParams};
use crate::cli::{Cli, Command};
use crate::client::Api;
use crate::fixture::Fixture;
use crate::report::{Report, markdown, table};
use crate::scenarios::{
    chain, create, follow, hostile, lifecycle, props, raw, reliability, results, steps,
};

/// Runs the command line; `Ok(false)` when a scenario of a bench failed (the others ran).
pub async fn run(cli: Cli) -> anyhow::Result<bool> {
    let api = Api::new(&cli.url, &cli.token);
    let fixture = Fixture::new();
    let mut report = Report::new();
    match &cli.command {
        Command::Create(args) => {
            report.create =
                Some(create::run(&api, &fixture, &args.params(), args.planner_pid).await?)
        }
        Command::Steps(args) => {
            report.steps = Some(steps::run(&api, &fixture, &args.params()).await?)
        }
        Command::Chain(args) => {
            report.chain = Some(chain::run(&api, &fixture, &args.params()).await?)
        }
        Command::Props(args) => {
            report.props = Some(props::run(&api, &fixture, &args.params()).await?)
        }
        Command::Results(args) => {
            let settings = settings()?;
            report.results = Some(results::run(&api, &fixture, &settings, &args.params()).await?);
        }
        Command::Lifecycle(args) => {
            report.lifecycle =
                Some(lifecycle::run(&api, &settings()?, &fixture, &args.params()).await?)
        }
        Command::Follow(args) => {
            report.follow = Some(follow::run(&api, &fixture, &args.params()).await?)
        }
        Command::Raw(args) => report.raw = Some(raw::run(&settings()?, &args.params()).await?),
        Command::Reliability(args) => {
            let params = reliability::ReliabilityParams {
                changes: args.changes,
                apis: args.apis.clone(),
                timeout: std::time::Duration::from_secs(args.timeout_seconds),
                pace: std::time::Duration::from_millis(args.pace_ms),
                step_seconds: args.step_seconds,
                canary: args.canary.clone(),
                poison: args.poison,
            };
            let outcome = reliability::run(&cli.token, &fixture, &settings()?, &params).await?;
            let json = serde_json::to_string_pretty(&outcome).context("serialising the report")?;
            match cli.json.as_deref() {
                Some(path) => std::fs::write(path, &json)
                    .with_context(|| format!("writing {}", path.display()))?,
                None => println!("{json}"),
            }
            reliability::verdict(&outcome)?;
            return Ok(true);
        }
        Command::Hostile(args) => {
            let params = hostile::HostileParams {
                timeout: std::time::Duration::from_secs(args.timeout_seconds),
            };
            let outcome = hostile::run(&api, &settings()?, &fixture, &params).await?;
            let json = serde_json::to_string_pretty(&outcome).context("serialising the report")?;
            match cli.json.as_deref() {
                Some(path) => std::fs::write(path, &json)
                    .with_context(|| format!("writing {}", path.display()))?,
                None => println!("{json}"),
            }
            hostile::verdict(&outcome)?;
            return Ok(true);
        }
        Command::Bench(args) => {
            let mut params = BenchParams::of(args.size);
            if let Some(steps) = args.chain_steps {
                params.chain.steps = steps;
            }
            params.chain.worker_metrics = Some(args.worker_metrics.clone());
            params.planner_pid = args.planner_pid;
            report = bench::run_repeated(&api, &settings()?, &params, usize::from(args.runs)).await;
            markdown::write(&report, &args.out)?;
            let json = cli
                .json
                .clone()
                .unwrap_or_else(|| args.out.join("benchmarks.json"));
            report.write_json(&json)?;
            println!("{}", table::summary(&report));
            eprintln!(
                "gantry-loadtest: wrote {}, {} and {}",
                args.out.join(markdown::MARKDOWN_FILE).display(),
                args.out.join(markdown::PLOT_FILE).display(),
                json.display()
            );
            return Ok(report.errors.is_empty());
        }
    }
    println!("{}", table::summary(&report));
    output_json(&report, cli.json.as_deref())?;
    Ok(true)
}

/// The settings Gantry itself uses (GANTRY_CONFIG_DIR, GANTRY_ENVIRONMENT, GANTRY_… variables):
/// the database and broker of the Gantry under test.
fn settings() -> anyhow::Result<Settings> {
    Settings::load().context("loading Gantry's settings (set GANTRY_CONFIG_DIR)")
}

fn output_json(report: &Report, path: Option<&Path>) -> anyhow::Result<()> {
    match path {
        Some(path) => report.write_json(path),
        None => {
            let json = serde_json::to_string_pretty(report).context("serialising the report")?;
            println!("\n{json}");
            Ok(())
        }
    }
}
