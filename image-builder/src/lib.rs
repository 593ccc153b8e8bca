//! image-builder: turns an app directory into a minimal, non-root image tagged by a
//! hash of its build inputs, built through the Docker Engine API and loaded into a
//! local cluster (or pushed to a registry).
//!
//! Library flow for callers such as `kubectl todo up`:
//!
//! 1. [`plan::plan`] a [`spec::ComponentSpec`] per component (detect the stack,
//!    generate the Dockerfile, hash the inputs);
//! 2. [`build::build_all`] the plans on an [`build::Engine`] (skipped when the tag
//!    exists), reporting through a [`build::Progress`];
//! 3. [`load::load`] into minikube/kind/k3d or [`push::push`] to a registry.

pub mod build;
pub mod ca;
pub mod check;
#[cfg(feature = "frontend")]
pub mod cli;
pub mod context;
pub mod detect;
pub mod digest;
pub mod dockerfile;
pub mod error;
#[cfg(feature = "frontend")]
pub mod frontend;
#[cfg(feature = "frontend")]
pub mod frontend_image;
pub mod ignore;
pub mod load;
pub mod own;
pub mod plan;
pub mod push;
pub mod python;
pub mod recipe;
pub mod reference;
pub mod session;
pub mod spec;
pub mod term;
#[cfg(feature = "frontend")]
pub mod via_frontend;

pub use error::{Error, Result};
