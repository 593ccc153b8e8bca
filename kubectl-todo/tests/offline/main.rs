//! The tests that need neither a cluster nor the Docker Engine, in one
//! binary: the command line and its generated pages and completions, the
//! docs' links and troubleshooting page, `init` on real-app fixtures, the
//! krew packaging and the project-file parser under fuzzing.

#[path = "../harness/mod.rs"]
mod harness;
#[path = "../real_apps_support/mod.rs"]
mod real_apps_support;

mod cli;
mod completion;
mod docs_links;
mod doctor_docs;
mod generated;
mod init;
mod krew;
mod parsers_fuzz;
