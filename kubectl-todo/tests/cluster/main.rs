//! The tests against the emulated cluster alone (no Docker Engine), in one
//! binary: the lifecycle of a deployed app (apply, status, history,
//! rollback, down, conflicts with other field managers, the ApplySet shared
//! with kubectl), the app lock, `render`, and `secrets` with and without a
//! terminal.

#[path = "../harness/mod.rs"]
mod harness;
mod secrets_support;

mod applyset_kubectl;
mod conflicts;
mod down_reports;
mod fault_probes;
mod hostile_input;
mod kubeconfig_faults;
mod lifecycle;
mod lock;
mod logs_rotation;
mod pod_failures;
mod refused_runs;
mod render;
mod request_timeout;
mod rollback;
mod secret_paths;
mod secrets_cli;
mod secrets_tty;
mod signals;
mod status;
