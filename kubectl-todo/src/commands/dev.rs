//! `kubectl todo dev`: settles the arguments and hands the session to
//! [`crate::dev`], which drives the pipeline once per change.

use std::net::IpAddr;
use std::process::ExitCode;
use std::time::Duration;

use crate::settings::Settings;
use image_builder::load::LoadInto;

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  kubectl todo dev                        deploy, then watch every component
  kubectl todo dev backend                watch, forward and follow the backend only
  kubectl todo dev --no-logs              status lines and URLs only
  kubectl todo dev --address 0.0.0.0      forwards reachable from other machines
  kubectl todo dev --down-on-exit         remove the app when the session ends

Ctrl-C (or SIGTERM) ends the session with exit status 0 and leaves the app running
(`kubectl todo down` removes it). Pin a component's local port with `devPort:` in todo.yaml.")]
pub struct Args {
    /// Components to watch, rebuild, forward and follow (default: all of them).
    #[arg(value_name = "COMPONENT")]
    pub components: Vec<String>,
    /// Local address the port-forwards listen on.
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    pub address: IpAddr,
    /// Do not stream the components' logs.
    #[arg(long)]
    pub no_logs: bool,
    /// Remove the app (as `kubectl todo down` does) when the session ends.
    #[arg(long)]
    pub down_on_exit: bool,
    /// Load images into this kind of local cluster (default: told by the context's name).
    #[arg(long, value_enum, value_name = "KIND")]
    pub load: Option<LoadInto>,
    /// Push images to this registry (for remote clusters) instead of loading them.
    #[arg(long, value_name = "REGISTRY", conflicts_with = "load", value_parser = crate::cli::parse_registry)]
    pub push: Option<String>,
    /// How long each rollout may take (e.g. 90s, 5m).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = crate::cli::parse_duration)]
    pub timeout: Duration,
    /// How long the files must stay quiet after a change before a turn applies it (bursts coalesce); the build starts after a third of it.
    #[arg(long, value_name = "DURATION", default_value = "150ms", value_parser = crate::cli::parse_duration)]
    pub debounce: Duration,
}

pub async fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    crate::dev::run(
        settings,
        crate::dev::Options {
            components: args.components,
            address: args.address,
            logs: !args.no_logs,
            down_on_exit: args.down_on_exit,
            load: args.load,
            push: args.push,
            timeout: args.timeout,
            debounce: args.debounce,
        },
    )
    .await
}
