//! Contract tests between `healthcheck-operator` and `healthcheck-probe` (in `tests/`). They
//! live in their own crate so that neither side depends on the other: both depend on
//! `healthcheck-spec`, and only this crate sees both.

#![forbid(unsafe_code)]
