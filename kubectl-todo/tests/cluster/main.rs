//! The lifecycle of a deployed app against the emulator, in one binary:
//! apply, status, history, rollback, down, conflicts with other field
//! managers, and the ApplySet shared with kubectl.

#[path = "../harness/mod.rs"]
mod support;

mod applyset_kubectl;
mod conflicts;
mod down_reports;
mod hostile_input;
mod kubeconfig_faults;
mod lifecycle;
mod refused_runs;
mod request_timeout;
mod rollback;
mod signals;
mod status;
