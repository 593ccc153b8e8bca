//! The revisions recorded in the cluster.

pub mod store;
