//! A Kubernetes API emulator for tests: it serves the real REST API over
//! HTTP on loopback and runs pods as containers on the Docker Engine.

pub mod admission;
pub mod bootstrap;
pub mod cluster;
pub mod controllers;
pub mod events;
pub mod fields;
pub mod kubelet;
pub mod merge;
pub mod quantity;
pub mod resources;
pub mod selector;
pub mod status;
pub mod store;
pub mod testimage;
pub mod time;
