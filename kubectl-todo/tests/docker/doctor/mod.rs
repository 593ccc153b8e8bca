//! `kubectl todo doctor`'s integration tests, in one binary: one per
//! diagnosis of the app and of the cluster.

#[path = "support.rs"]
mod doctor_support;

mod app;
mod cluster;
mod redaction;
