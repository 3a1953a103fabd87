use clap::Parser;
use gantry_loadtest::cli::Cli;

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    match gantry_loadtest::run(cli).await {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("gantry-loadtest: error: {e:#}");
            std::process::exit(1);
        }
    }
}
