//! `healthcheck serve`: runs the configured checks in-process on Docker's schedule and answers
//! probes over HTTP from the latest results, so no probe ever forks a process or starts a run.

pub mod config;
pub(crate) mod http;
mod metrics;
mod page;
mod report;
mod scheduler;
pub mod state;
pub mod status;

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use config::{Config, Role, RoleConfig};
use metrics::RunStats;
use scheduler::{Executor, Shutdown};
use state::Health;

/// The moment monitoring started, on both clocks: state offsets are measured on the monotonic
/// one and shown on the wall clock.
#[derive(Clone, Copy, Debug)]
pub struct Epoch {
    mono: Instant,
    wall: SystemTime,
}

impl Epoch {
    pub fn now() -> Epoch {
        Epoch {
            mono: Instant::now(),
            wall: SystemTime::now(),
        }
    }

    /// The offset of `at` from the epoch.
    pub fn offset(&self, at: Instant) -> Duration {
        at.saturating_duration_since(self.mono)
    }

    pub fn instant(&self, offset: Duration) -> Instant {
        self.mono + offset
    }

    pub fn wall(&self, offset: Duration) -> SystemTime {
        self.wall + offset
    }
}

/// What readers see of one role: Docker's health and run counters, under one lock.
#[derive(Clone, Debug)]
pub struct RoleState {
    pub health: Health,
    pub stats: RunStats,
}

/// One configured role: its check, its state, and the executor that runs it one run at a time.
pub struct RoleMonitor {
    pub config: RoleConfig,
    state: RwLock<RoleState>,
    /// Held for a whole run: at most one run per role at any time (single flight).
    executor: Mutex<Executor>,
}

impl RoleMonitor {
    fn new(config: RoleConfig) -> Result<RoleMonitor, String> {
        let executor = Executor::spawn(
            config.role,
            config.check.clone(),
            config.timing.timeout,
            config.service_root.clone(),
        )?;
        Ok(RoleMonitor {
            state: RwLock::new(RoleState {
                health: Health::new(config.timing),
                stats: RunStats::default(),
            }),
            executor: Mutex::new(executor),
            config,
        })
    }

    /// A consistent copy of the current state (cheap: five log entries at most).
    pub fn snapshot(&self) -> RoleState {
        self.state.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Runs `read` on the current state without copying it.
    pub fn read<T>(&self, read: impl FnOnce(&RoleState) -> T) -> T {
        read(&self.state.read().unwrap_or_else(|e| e.into_inner()))
    }

    fn update(&self, write: impl FnOnce(&mut RoleState)) {
        write(&mut self.state.write().unwrap_or_else(|e| e.into_inner()));
    }
}

/// Everything the HTTP side reads.
pub struct App {
    pub epoch: Epoch,
    pub monitors: Vec<Arc<RoleMonitor>>,
}

impl App {
    pub fn monitor(&self, role: Role) -> Option<&RoleMonitor> {
        self.monitors
            .iter()
            .map(Arc::as_ref)
            .find(|m| m.config.role == role)
    }
}

/// Requested by SIGTERM or SIGINT.
static STOP: http::StopSignal = http::StopSignal::new();

extern "C" fn request_stop(_signal: libc::c_int) {
    STOP.request();
}

fn stop_on_signals() {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: the handler only stores to an atomic and writes(2), both async-signal-safe.
        unsafe { libc::signal(signal, request_stop as *const () as libc::sighandler_t) };
    }
}

/// Runs until SIGTERM or SIGINT: checks on their schedules, the HTTP server on `listen`. On a
/// signal it stops accepting, finishes the requests in flight and returns.
pub fn run(config: Config) -> Result<(), String> {
    stop_on_signals();
    let listener = http::bind(&config.listen)?;
    let epoch = Epoch::now();
    let monitors = config
        .roles
        .into_iter()
        .map(|role| RoleMonitor::new(role).map(Arc::new))
        .collect::<Result<Vec<_>, _>>()?;
    let app = Arc::new(App { epoch, monitors });
    let shutdown = Arc::new(Shutdown::default());
    for monitor in &app.monitors {
        if !monitor.config.on_demand {
            scheduler::spawn(epoch, Arc::clone(monitor), Arc::clone(&shutdown))?;
        }
    }
    eprintln!(
        "healthcheck serve: listening on {} ({})",
        listener.local_addr().map_err(|e| e.to_string())?,
        app.monitors
            .iter()
            .map(|m| m.config.role.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let result = http::serve(listener, Arc::clone(&app), &STOP);
    shutdown.stop();
    result
}
