//! `twostep`: a self-hosted account server with strong two-factor
//! authentication. See `twostep --help`.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = twostep::cli::parse();
    match twostep::cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("twostep: {e}");
            ExitCode::FAILURE
        }
    }
}
