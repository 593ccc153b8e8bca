//! A Kubernetes API emulator for tests: it serves the real REST API over
//! HTTP on loopback and runs pods as containers on the Docker Engine.

pub mod admission;
pub mod bootstrap;
pub mod client;
pub mod cluster;
pub mod controllers;
pub mod emulator;
pub mod events;
pub mod faults;
pub mod fields;
pub mod kubelet;
pub mod merge;
pub mod openapi;
pub mod portforward;
pub mod protobuf;
pub mod quantity;
pub mod resources;
pub mod schema;
pub mod selector;
pub mod server;
pub mod standins;
pub mod status;
pub mod store;
pub mod table;
pub mod testimage;
pub mod time;
pub mod tls;
pub mod watch;

pub use cluster::{Cluster, NodeConfig, Runtime};
pub use emulator::{Config, Emulator};
