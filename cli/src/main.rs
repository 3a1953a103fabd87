use clap::Parser;

mod client;
mod commands;
mod render;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cli = commands::Cli::parse();
    if let Err(e) = commands::run(cli).await {
        eprintln!("gantry: error: {e:#}");
        std::process::exit(1);
    }
}
