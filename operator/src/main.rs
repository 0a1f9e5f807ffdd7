//! `healthcheck-operator`: the operator (`run`) and offline tools around the `HealthCheck` API.

#![forbid(unsafe_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use healthcheck_operator::api::HealthCheck;
use healthcheck_operator::import::{Imported, import_dockerfile, to_spec};
use healthcheck_operator::render::{Format, render};
use healthcheck_operator::{CRD_PATH, Error, crd_yaml, parse_health_check, yaml};

#[derive(Parser)]
#[command(name = "healthcheck-operator", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the operator: admission webhook, HealthCheck status and rollouts.
    Run(Box<healthcheck_operator::run::RunArgs>),
    /// Write the HealthCheck CustomResourceDefinition.
    Crdgen {
        /// Where to write it; `-` for standard output.
        #[arg(short, long, default_value = CRD_PATH)]
        output: PathBuf,
    },
    /// Print what a HealthCheck injects or configures, for one runtime.
    Render {
        /// The HealthCheck YAML; `-` for standard input.
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
        #[arg(long = "to", value_enum)]
        format: Format,
    },
    /// Print a HealthCheck for the last HEALTHCHECK of a Dockerfile.
    ImportDockerfile {
        /// The Dockerfile; `-` for standard input.
        file: PathBuf,
        /// The service: the HealthCheck's name and its pods' `app.kubernetes.io/name` label.
        /// Defaults to the Dockerfile's directory name.
        #[arg(long)]
        name: Option<String>,
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
        Command::Run(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|source| Error::Read {
                path: "the async runtime".to_string(),
                source,
            })?
            .block_on(healthcheck_operator::run::run(*args)),
        Command::Crdgen { output } => write_output(&output, &crd_yaml()?),
        Command::Render { file, format } => {
            let health_check =
                parse_health_check(&read_input(&file)?, &file.display().to_string())?;
            print!("{}", render(&health_check, format)?);
            if format == Format::DockerRun {
                eprintln!(
                    "{}",
                    healthcheck_operator::render::docker::DOCKER_RUN_NEEDS_A_SHELL
                );
            }
            Ok(())
        }
        Command::ImportDockerfile { file, name } => {
            let name = match name {
                Some(name) => name,
                None => directory_name(&file)?,
            };
            let import_error = |message: String| Error::Import {
                path: file.display().to_string(),
                message,
            };
            let imported = import_dockerfile(&read_input(&file)?)
                .map_err(|err| import_error(err.to_string()))?;
            let (check, timing) = match imported {
                Imported::Healthcheck { check, timing } => (check, timing),
                Imported::Disabled => {
                    return Err(import_error(
                        "nothing to import: HEALTHCHECK NONE disables the check".to_string(),
                    ));
                }
                Imported::Absent => {
                    return Err(import_error(
                        "nothing to import: no HEALTHCHECK in the final stage".to_string(),
                    ));
                }
            };
            let spec =
                to_spec(check, timing, &name).map_err(|err| import_error(err.to_string()))?;
            let health_check = HealthCheck::new(&name, spec);
            print!("{}", yaml(&health_check)?);
            Ok(())
        }
    }
}

/// `nova-api/Dockerfile` → `nova-api`.
fn directory_name(file: &Path) -> Result<String, Error> {
    (file.as_os_str() != "-")
        .then(|| std::path::absolute(file).ok())
        .flatten()
        .and_then(|path| Some(path.parent()?.file_name()?.to_str()?.to_string()))
        .ok_or_else(|| Error::Import {
            path: file.display().to_string(),
            message: "cannot name the service after the directory; pass --name".to_string(),
        })
}

fn read_input(path: &Path) -> Result<String, Error> {
    let read_error = |source| Error::Read {
        path: path.display().to_string(),
        source,
    };
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(read_error)?;
        return Ok(text);
    }
    std::fs::read_to_string(path).map_err(read_error)
}

fn write_output(path: &Path, text: &str) -> Result<(), Error> {
    if path.as_os_str() == "-" {
        print!("{text}");
        return Ok(());
    }
    std::fs::write(path, text).map_err(|source| Error::Write {
        path: path.display().to_string(),
        source,
    })
}
