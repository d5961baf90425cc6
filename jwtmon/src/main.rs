//! `jwtmon`: parses the command line and hands it to the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = jwtmon::cli::Cli::parse();
    match jwtmon::commands::execute(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jwtmon: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
