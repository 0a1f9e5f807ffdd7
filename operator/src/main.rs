//! `healthcheck-operator`: offline tools around the `HealthCheck` API.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use healthcheck_operator::{CRD_PATH, Error, crd_yaml};

#[derive(Parser)]
#[command(name = "healthcheck-operator", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write the HealthCheck CustomResourceDefinition (`-` for standard output).
    Crdgen {
        #[arg(short, long, default_value = CRD_PATH)]
        output: PathBuf,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("healthcheck-operator: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), Error> {
    match cli.command {
        Command::Crdgen { output } => write_output(&output, &crd_yaml()?),
    }
}

fn write_output(path: &PathBuf, text: &str) -> Result<(), Error> {
    if path.as_os_str() == "-" {
        print!("{text}");
        return Ok(());
    }
    std::fs::write(path, text).map_err(|source| Error::Write {
        path: path.display().to_string(),
        source,
    })
}
