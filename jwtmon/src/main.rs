//! `jwtmon`: parses the command line and hands it to the library.

use clap::Parser;

/// mimalloc: the pipeline allocates small, short-lived buffers per request,
/// where glibc's allocator costs it about half its throughput
/// (`cargo xtask bench-pipeline`). Built without transparent huge pages
/// (the crate's `no_thp` feature): with them a sparsely used arena is
/// resident in 2 MiB pages, 26 MiB more at idle (`cargo xtask bench-flood`).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
