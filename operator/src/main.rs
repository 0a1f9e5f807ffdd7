//! The HealthCheck operator. The API types, rendering and the webhook arrive in later changes.

fn main() {
    eprintln!("healthcheck-operator: no subcommands yet");
    std::process::exit(1);
}
