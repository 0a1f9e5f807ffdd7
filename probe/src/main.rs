//! `healthcheck`: exec mode. Parses what to check, runs it under one deadline, prints one line,
//! exits 0 (healthy) or 1 (unhealthy or misconfigured) — never anything else.

use std::path::Path;
use std::time::{Duration, Instant};

use clap::Parser;
use healthcheck_probe::cli::{Cli, Command, ServeArgs, deadline_from};
use healthcheck_probe::compat::{self, Invocation};
use healthcheck_probe::context::Context;
use healthcheck_probe::dispatch::{self, Probe};
use healthcheck_probe::serve::{self, config::Config, status};
use healthcheck_probe::watchdog::{self, finish, report_and_exit};
use healthcheck_probe::{Deadline, Outcome, profiles};
use healthcheck_spec::args::first_line;
use healthcheck_spec::{Check, ProfileCheck};

fn main() {
    std::panic::set_hook(Box::new(|info| {
        eprintln!("healthcheck: {info}");
        report_and_exit(
            &format!(
                "{}\n",
                Outcome::unhealthy(format!("internal error: {info}")).line()
            ),
            1,
        );
    }));
    let mut args = std::env::args_os().map(|a| a.to_string_lossy().into_owned());
    let argv0 = args.next().unwrap_or_default();
    let args: Vec<String> = args.collect();
    let name = Path::new(&argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if compat::NAMES.contains(&name.as_str()) {
        run_compat(&name, &args)
    } else if profiles::find(&name).is_some() {
        // A symlink named after the profile, as TripleO installed its per-service scripts.
        run_profile(name, args)
    } else if let Some(profile) = std::env::var("HEALTHCHECK_PROFILE")
        .ok()
        .filter(|p| !p.is_empty())
    {
        run_profile(profile, args)
    } else {
        run_cli(&argv0, args)
    }
}

fn fail(message: String) -> ! {
    report_and_exit(&format!("{}\n", Outcome::unhealthy(message).line()), 1)
}

/// At the deadline the watchdog reports `unhealthy: LABEL timed out after …`.
fn arm_timeout(deadline: &Deadline, label: &str) {
    watchdog::arm_labelled(deadline.instant(), label, deadline.expired_message());
}

fn run_cli(argv0: &str, args: Vec<String>) -> ! {
    let cli = match Cli::try_parse_from(std::iter::once(argv0.to_string()).chain(args)) {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind::{DisplayHelp, DisplayVersion};
            if matches!(e.kind(), DisplayHelp | DisplayVersion) {
                report_and_exit(&e.to_string(), 0);
            }
            eprint!("{e}");
            fail(format!("invalid arguments: {}", first_line(&e.to_string())));
        }
    };
    // `serve` has no run deadline: only compute (and validate) it for the commands that do.
    let total = || {
        deadline_from(
            cli.timeout,
            std::env::var("HEALTHCHECK_CURL_MAX_TIME").ok().as_deref(),
        )
        .unwrap_or_else(|e| fail(e))
    };
    let invalid = |e: String| -> ! { fail(format!("invalid arguments: {e}")) };
    let probe = match cli.command {
        Command::Check(command) => {
            Probe::Check(command.into_check().unwrap_or_else(|e| invalid(e)))
        }
        Command::Mysql(args) => args.into_probe().unwrap_or_else(|e| invalid(e)),
        Command::Amqp(args) => args.into_probe().unwrap_or_else(|e| invalid(e)),
        Command::Profiles => report_and_exit(&profiles::listing(), 0),
        Command::InstallCompat { dir, with_profiles } => {
            let target = std::env::current_exe()
                .unwrap_or_else(|e| fail(format!("cannot find this binary: {e}")));
            let mut names = compat::NAMES.to_vec();
            if with_profiles {
                names.extend(profiles::all().iter().map(|p| p.name));
            }
            match compat::install(&dir, &target, &names) {
                Ok(links) => report_and_exit(&format!("installed {}\n", links.join(" ")), 0),
                Err(e) => fail(e),
            }
        }
        Command::Status(args) => {
            let deadline = Deadline::after(total());
            arm_timeout(&deadline, "status");
            let (text, code) = status::run(&args.url, args.role, &Context::from_env(deadline));
            report_and_exit(&text, code)
        }
        Command::Serve(args) => run_serve(&args),
    };
    run_probe(&probe, total())
}

/// `nova-api ARGS` (argv[0]) or `HEALTHCHECK_PROFILE=nova-api healthcheck ARGS`.
fn run_profile(name: String, args: Vec<String>) -> ! {
    let total = deadline_from(
        None,
        std::env::var("HEALTHCHECK_CURL_MAX_TIME").ok().as_deref(),
    )
    .unwrap_or_else(|e| fail(e));
    run_probe(
        &Probe::Check(Check::Profile(ProfileCheck { name, args })),
        total,
    )
}

fn run_probe(probe: &Probe, total: Duration) -> ! {
    let deadline = Deadline::after(total);
    let label = match probe {
        Probe::Check(Check::Profile(profile)) => profile.name.clone(),
        other => format!("{} check", other.kind()),
    };
    arm_timeout(&deadline, &label);
    let outcome = probe.run(&Context::from_env(deadline));
    report_and_exit(&format!("{}\n", outcome.line()), outcome.exit_code())
}

fn run_compat(name: &str, args: &[String]) -> ! {
    let invocation = compat::parse(name, args).unwrap_or_else(|e| {
        eprintln!("{e}");
        fail(e)
    });
    let env = |var: &str| std::env::var(var).ok().filter(|v| !v.is_empty());
    let total = deadline_from(None, env("HEALTHCHECK_CURL_MAX_TIME").as_deref())
        .unwrap_or_else(|e| fail(e));
    let deadline = Deadline::after(total);
    let ctx = Context::from_env(deadline);
    match invocation {
        Invocation::Curl(check) => {
            let started = Instant::now();
            let write_out = env("HEALTHCHECK_CURL_WRITE_OUT")
                .unwrap_or_else(|| compat::DEFAULT_WRITE_OUT.to_string());
            let output = env("HEALTHCHECK_CURL_OUTPUT").unwrap_or_else(|| "/dev/null".to_string());
            finish(compat::run_curl(&check, &ctx, &write_out, &output, started))
        }
        Invocation::Check(check) => {
            arm_timeout(&deadline, name);
            let outcome = dispatch::run(&check, &ctx);
            report_and_exit(&format!("{}\n", outcome.line()), outcome.exit_code())
        }
    }
}

fn run_serve(args: &ServeArgs) -> ! {
    let _ = std::panic::take_hook();
    std::panic::set_hook(Box::new(|info| eprintln!("healthcheck serve: {info}")));
    let inline = std::env::var(serve::config::CONFIG_ENV).ok();
    let result = Config::load(args.config.as_deref(), inline.as_deref()).and_then(|mut config| {
        if let Some(listen) = &args.listen {
            config.listen.clone_from(listen);
        }
        serve::run(config)
    });
    match result {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("healthcheck serve: {e}");
            std::process::exit(1)
        }
    }
}
