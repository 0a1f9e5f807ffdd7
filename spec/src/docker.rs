//! Docker's HEALTHCHECK timing defaults (moby `daemon/health.go`), which the operator renders
//! and `healthcheck serve` runs on.

use crate::duration::DockerDuration;

pub const DEFAULT_INTERVAL: DockerDuration = DockerDuration::from_secs(30);
pub const DEFAULT_TIMEOUT: DockerDuration = DockerDuration::from_secs(30);
pub const DEFAULT_START_PERIOD: DockerDuration = DockerDuration::from_secs(0);
pub const DEFAULT_START_INTERVAL: DockerDuration = DockerDuration::from_secs(5);
pub const DEFAULT_RETRIES: u32 = 3;
/// Docker rejects durations between 0 (which means the default) and 1 ms.
pub const MIN_DURATION: DockerDuration = DockerDuration::from_millis(1);
