//! A file exists and is fresh: a service that writes a heartbeat or recon file is alive.

use std::time::SystemTime;

use healthcheck_spec::FileCheck;

use crate::Outcome;

pub fn run(spec: &FileCheck) -> Outcome {
    let path = &spec.path;
    let missing =
        || Outcome::unhealthy(format!("{path} does not exist for file modification check"));
    let modified = match std::fs::metadata(path) {
        // The scripts test `[ -f ]`: a directory or a device is as good as missing. TripleO's
        // exact text, kept so log parsers and operators recognise it.
        Ok(meta) if !meta.is_file() => return missing(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return missing(),
        meta => match meta.and_then(|m| m.modified()) {
            Ok(modified) => modified,
            Err(e) => {
                return Outcome::unhealthy(format!(
                    "cannot stat {path}: {}",
                    crate::net::describe_io(&e)
                ));
            }
        },
    };
    // A modification time in the future (clock skew) counts as just written.
    let age = SystemTime::now()
        .duration_since(modified)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    if age <= spec.max_age_seconds {
        Outcome::healthy(format!(
            "{path} modified {age}s ago (limit {}s)",
            spec.max_age_seconds
        ))
    } else {
        Outcome::unhealthy(format!(
            "{path} modified {age}s ago, more than {}s",
            spec.max_age_seconds
        ))
    }
}
