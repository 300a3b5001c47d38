//! The `vigie` binary: parse the command line, set up logging, dispatch.

use std::io::IsTerminal;

use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() {
    let cli = vigie::cli::Cli::parse();
    // Logs go to stderr, plain text without colours unless on a terminal:
    // journald keeps them as they are. RUST_LOG overrides the level.
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    std::process::exit(vigie::cli::run(cli));
}
