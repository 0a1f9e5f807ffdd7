//! A process whose full command line matches is running.

use healthcheck_spec::ProcessCheck;

use super::{Context, pid_list, processes_matching};
use crate::Outcome;

pub fn run(spec: &ProcessCheck, ctx: &Context) -> Outcome {
    match processes_matching(&spec.pattern, ctx) {
        Ok(found) => {
            let found: Vec<_> = found.iter().collect();
            Outcome::healthy(format!(
                "process `{}` running (pid {})",
                spec.pattern,
                pid_list(&found)
            ))
        }
        Err(outcome) => outcome,
    }
}
