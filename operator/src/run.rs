//! `healthcheck-operator run`: wires the webhook, the HealthCheck cache, TLS, leader election
//! and the controller together.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use futures::StreamExt;
use healthcheck_spec::url::{Scheme, Url};
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{Api, ListParams};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::api::HealthCheck;
use crate::context::{Context, WebhookService};
use crate::error::Error;
use crate::index::{Feed, SharedIndex};
use crate::inject::InjectConfig;
use crate::metrics::Metrics;
use crate::registration::{apply_ca_bundle, apply_configuration, webhook_configuration};
use crate::supervisor::Supervisor;
use crate::tls::{self, Certificates};
use crate::webhook::{
    DEFAULT_REVIEW_ROOM_BYTES, MIN_REVIEW_ROOM_BYTES, Webhook, health_router, router, serve_plain,
    serve_tls,
};
use crate::{controller, leader};

/// How often the certificate Secret (or cert-manager's files) is re-read.
const TLS_REFRESH: Duration = Duration::from_secs(300);

#[derive(Clone, Debug, clap::Args)]
pub struct RunArgs {
    /// The operator's namespace: its Lease and certificate Secret live there.
    #[arg(long, env = "POD_NAMESPACE", default_value = "healthcheck-operator")]
    pub namespace: String,
    /// This replica's name in the Lease.
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Webhook (TLS) listen address.
    #[arg(long, default_value = "0.0.0.0:8443")]
    pub webhook_address: SocketAddr,
    /// Health, readiness and metrics (plain HTTP) listen address.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub health_address: SocketAddr,
    /// Register the webhook by this URL (e.g. https://127.0.0.1:8443) instead of the Service:
    /// the operator then writes the whole MutatingWebhookConfiguration (local runs).
    #[arg(long, value_parser = https_url)]
    pub webhook_url: Option<String>,
    /// The Service in front of the webhook (certificate names when not registered by URL).
    #[arg(long, default_value = "healthcheck-operator")]
    pub service_name: String,
    /// The MutatingWebhookConfiguration holding the webhook.
    #[arg(long, default_value = "healthcheck-operator")]
    pub webhook_configuration: String,
    /// The Secret keeping the self-generated CA and serving certificate.
    #[arg(long, default_value = "healthcheck-operator-tls")]
    pub tls_secret: String,
    /// Serve tls.crt/tls.key from this directory (e.g. a cert-manager Secret) instead of
    /// self-generating; the caBundle is then left to cert-manager's CA injector.
    #[arg(long)]
    pub tls_dir: Option<PathBuf>,
    /// The Lease electing the replica that writes status and rollouts.
    #[arg(long, default_value = "healthcheck-operator")]
    pub lease: String,
    /// Image with `/openstack/healthcheck`, for `injectBinary` and the HTTP-mode sidecar.
    #[arg(
        long,
        env = "PROBE_IMAGE",
        default_value = "ghcr.io/openstack-healthcheck/probe:latest"
    )]
    pub probe_image: String,
    /// MiB that the admission reviews in work at once may take together, bodies being read
    /// included; a review finding no room within 2 s is admitted unchanged and counted as
    /// `Overloaded`. Fit it to the container's memory limit (24 for `deploy/`'s 128Mi).
    #[arg(long, default_value_t = DEFAULT_REVIEW_ROOM_BYTES / (1024 * 1024), value_parser = review_room_mib)]
    pub review_room_mib: usize,
    /// Log as JSON lines (the default is human-readable).
    #[arg(long)]
    pub log_json: bool,
}

fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    // A second init (tests) keeps the first subscriber.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

fn identity(args: &RunArgs) -> String {
    args.identity.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        format!("{}-{}", host.trim(), std::process::id())
    })
}

/// The names the serving certificate must carry.
fn certificate_names(args: &RunArgs) -> Vec<String> {
    match &args.webhook_url {
        // `https_url` accepted it, so it parses.
        Some(url) => Url::parse(url)
            .map(|url| vec![url.host])
            .unwrap_or_default(),
        None => {
            let (service, namespace) = (&args.service_name, &args.namespace);
            vec![
                format!("{service}.{namespace}.svc"),
                format!("{service}.{namespace}.svc.cluster.local"),
                format!("{service}.{namespace}"),
            ]
        }
    }
}

/// `--review-room-mib`: at least the room one review of any size needs.
fn review_room_mib(text: &str) -> Result<usize, String> {
    let least = MIN_REVIEW_ROOM_BYTES.div_ceil(1024 * 1024);
    match text.parse::<usize>() {
        Ok(mib) if mib >= least => Ok(mib),
        _ => Err(format!(
            "`{text}` is not a number of MiB of at least {least} (one review of the largest size needs that)"
        )),
    }
}

/// `--webhook-url`: the apiserver calls webhooks over TLS, and the URL's host names the
/// serving certificate.
fn https_url(text: &str) -> Result<String, String> {
    match Url::parse(text)?.scheme {
        Scheme::Https => Ok(text.to_string()),
        Scheme::Http => Err(format!(
            "`{text}` is not https: the apiserver calls webhooks over TLS"
        )),
    }
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}

pub async fn run(args: RunArgs) -> Result<(), Error> {
    // kube and the webhook both use rustls with ring; installing it makes the choice explicit.
    let _ = rustls::crypto::ring::default_provider().install_default();
    init_tracing(args.log_json);
    let client = Client::try_default().await.map_err(|source| Error::Kube {
        context: "connect to the cluster (KUBECONFIG or in-cluster)".to_string(),
        source,
    })?;
    let health_checks = Api::<HealthCheck>::all(client.clone());
    health_checks
        .list(&ListParams::default().limit(1))
        .await
        .map_err(|source| Error::Kube {
            context: "list HealthChecks; is the CRD installed (kubectl apply -f crds/)?"
                .to_string(),
            source,
        })?;
    let identity = identity(&args);
    let metrics = Arc::new(Metrics::default());
    let inject = InjectConfig {
        probe_image: args.probe_image.clone(),
    };

    // The webhook answers from this cache; /readyz waits for its first complete list.
    let index = Arc::new(SharedIndex::default());
    let webhook = Arc::new(Webhook::new(
        index.clone(),
        metrics.clone(),
        args.review_room_mib * 1024 * 1024,
    ));
    let cache = {
        let metrics = metrics.clone();
        let mut feed = Feed::new(inject.clone());
        watcher(health_checks, watcher::Config::default())
            .default_backoff()
            .for_each(move |event| {
                match event {
                    Ok(event) => {
                        let count = index.handle(&mut feed, event);
                        metrics.health_checks.set(count as i64);
                    }
                    Err(err) => {
                        warn!(%err, "HealthCheck watch failed; retrying");
                        metrics.error("watch");
                    }
                }
                futures::future::ready(())
            })
    };

    let tls_config = serving_config(&args, &client).await?;
    let webhook_handle = Handle::new();
    let health_handle = Handle::new();
    let webhook_server = serve_tls(
        args.webhook_address,
        router(webhook.clone()),
        tls_config.clone(),
        webhook_handle.clone(),
    );
    let health_server = serve_plain(
        args.health_address,
        health_router(webhook),
        health_handle.clone(),
    );

    let (leader_tx, leader_rx) = watch::channel(false);
    let leases = Api::<Lease>::namespaced(client.clone(), &args.namespace);
    let election = leader::run(
        leases.clone(),
        args.lease.clone(),
        identity.clone(),
        leader_tx,
    );
    let leader_gauge = {
        let metrics = metrics.clone();
        let mut leader = leader_rx.clone();
        async move {
            while leader.changed().await.is_ok() {
                metrics.leader.set(i64::from(*leader.borrow_and_update()));
            }
        }
    };
    let mut context = Context::new(client.clone(), &identity, metrics, leader_rx, inject);
    context.webhook_service = args.webhook_url.is_none().then(|| WebhookService {
        namespace: args.namespace.clone(),
        name: args.service_name.clone(),
        ready_since: Mutex::default(),
    });
    let ctx = Arc::new(context);
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut stop: watch::Receiver<bool>| async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    };
    let mut tasks = Supervisor::default();
    tasks.spawn("controller", controller::run(ctx, stopped(stop_rx.clone())));
    tasks.spawn("HealthCheck cache", cache);
    tasks.spawn("leader election", election);
    tasks.spawn("leader gauge", leader_gauge);
    tasks.spawn(
        "TLS refresh",
        refresh_tls(args.clone(), client.clone(), tls_config),
    );

    info!(identity, webhook = %args.webhook_address, health = %args.health_address, "running");
    let outcome = tokio::select! {
        result = webhook_server => result,
        result = health_server => result,
        err = tasks.first_ended() => Err(err),
        () = shutdown_signal() => Ok(()),
    };
    info!("shutting down");
    let _ = stop_tx.send(true);
    webhook_handle.graceful_shutdown(Some(Duration::from_secs(5)));
    health_handle.shutdown();
    tasks.stop("controller", Duration::from_secs(5)).await;
    leader::release(&leases, &args.lease, &identity).await;
    if let Err(err) = &outcome {
        error!(%err, "stopped");
    }
    outcome
}

/// The serving certificate, and the webhook registration that trusts it.
async fn serving_config(args: &RunArgs, client: &Client) -> Result<RustlsConfig, Error> {
    if let Some(dir) = &args.tls_dir {
        let (cert, key) = read_tls_dir(dir)?;
        return Ok(RustlsConfig::from_config(tls::server_config(&cert, &key)?));
    }
    let certs = ensure_certificates(args, client).await?;
    Ok(RustlsConfig::from_config(certs.server_config()?))
}

fn read_tls_dir(dir: &std::path::Path) -> Result<(String, String), Error> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read_to_string(&path).map_err(|source| Error::Read {
            path: path.display().to_string(),
            source,
        })
    };
    Ok((read(tls::TLS_CERT)?, read(tls::TLS_KEY)?))
}

async fn ensure_certificates(args: &RunArgs, client: &Client) -> Result<Certificates, Error> {
    let secrets = Api::<Secret>::namespaced(client.clone(), &args.namespace);
    let certs = tls::load_or_create(
        &secrets,
        &args.namespace,
        &args.tls_secret,
        &certificate_names(args),
    )
    .await?;
    let configurations = Api::<MutatingWebhookConfiguration>::all(client.clone());
    match &args.webhook_url {
        Some(url) => {
            let configuration =
                webhook_configuration(&args.webhook_configuration, url, &certs.ca_cert);
            apply_configuration(&configurations, &configuration).await?
        }
        None => {
            apply_ca_bundle(&configurations, &args.webhook_configuration, &certs.ca_cert).await?
        }
    }
    Ok(certs)
}

/// Re-reads the certificate periodically: renewals by any replica reach every replica.
async fn refresh_tls(args: RunArgs, client: Client, config: RustlsConfig) {
    loop {
        tokio::time::sleep(TLS_REFRESH).await;
        let server_config = match &args.tls_dir {
            Some(dir) => read_tls_dir(dir).and_then(|(cert, key)| tls::server_config(&cert, &key)),
            None => ensure_certificates(&args, &client)
                .await
                .and_then(|certs| certs.server_config()),
        };
        match server_config {
            Ok(server_config) => config.reload_from_config(server_config),
            Err(err) => {
                warn!(%err, "cannot refresh the serving certificate; keeping the current one")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    fn args(extra: &[&str]) -> RunArgs {
        let argv = ["run", "--namespace", "ops"].iter().chain(extra);
        Cli::parse_from(argv).run
    }

    #[test]
    fn certificate_names_follow_the_registration() {
        assert_eq!(
            certificate_names(&args(&[])),
            [
                "healthcheck-operator.ops.svc",
                "healthcheck-operator.ops.svc.cluster.local",
                "healthcheck-operator.ops"
            ]
        );
        for (url, host) in [
            ("https://127.0.0.1:8443", "127.0.0.1"),
            ("https://[::1]:9443/", "::1"),
            ("https://webhook.local", "webhook.local"),
        ] {
            assert_eq!(certificate_names(&args(&["--webhook-url", url])), [host]);
        }
        for (url, why) in [
            ("http://127.0.0.1:8443", "is not https"),
            ("https://::1:8443/", "must be in brackets"),
            ("127.0.0.1:8443", "expected http:// or https://"),
        ] {
            let argv = ["run", "--namespace", "ops", "--webhook-url", url];
            let err = Cli::try_parse_from(argv).err().unwrap().to_string();
            assert!(err.contains(why), "{url}: {err}");
        }
    }
}
