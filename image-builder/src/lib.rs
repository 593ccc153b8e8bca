//! image-builder: minimal non-root images with content-hash tags.

pub mod cli;
