//! `kube-emulator`: serve the emulated Kubernetes API, or load images onto a
//! running emulator's node.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand, ValueEnum};
use kube_emulator::{Config, Emulator, NodeConfig, Runtime};

#[derive(Debug, Parser)]
#[command(
    name = "kube-emulator",
    version,
    about = "A Kubernetes API emulator for tests: real REST API on loopback, pods as Docker containers",
    args_conflicts_with_subcommands = true,
    after_help = "Examples:\n  kube-emulator --kubeconfig /tmp/kc --runtime docker\n  kube-emulator load --kubeconfig /tmp/kc todo-web:0123456789abcdef"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Put images from the local Docker Engine onto a running emulator's node.
    Load {
        /// The kubeconfig the emulator wrote.
        #[arg(long)]
        kubeconfig: PathBuf,
        /// Image references, as `docker images` shows them.
        #[arg(required = true)]
        images: Vec<String>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RuntimeArg {
    Docker,
    Scripted,
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Where to write the kubeconfig (current context `emulator`).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Port on 127.0.0.1; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// How pods run: real containers, or scripted pods that are Ready at once.
    #[arg(long, value_enum, default_value = "docker")]
    runtime: RuntimeArg,
    /// The node's allocatable CPU, in cores (`4`) or millicores (`3500m`).
    #[arg(long, default_value = "4")]
    node_cpu: String,
    /// The node's allocatable memory (`8Gi`).
    #[arg(long, default_value = "8Gi")]
    node_memory: String,
    /// An image to put on the node at start; repeatable.
    #[arg(long)]
    preload: Vec<String>,
    /// Serve HTTPS with a CA of its own, written into the kubeconfig.
    #[arg(long)]
    tls: bool,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("KUBE_EMULATOR_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let rt = tokio::runtime::Runtime::new()?;
    match cli.command {
        Some(Command::Load { kubeconfig, images }) => rt.block_on(load(kubeconfig, images)),
        None => rt.block_on(serve(cli.serve)),
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let Some(kubeconfig) = args.kubeconfig else {
        bail!(
            "--kubeconfig PATH is required: it is where the emulator writes the kubeconfig for kubectl"
        );
    };
    let node = NodeConfig {
        cpu_millis: kube_emulator::quantity::parse(&args.node_cpu)
            .map(|q| q.milli_value())
            .with_context(|| {
                format!(
                    "--node-cpu {:?} is not a CPU quantity (try 4 or 3500m)",
                    args.node_cpu
                )
            })?,
        memory_bytes: kube_emulator::quantity::parse(&args.node_memory)
            .map(|q| q.value())
            .with_context(|| {
                format!(
                    "--node-memory {:?} is not a memory quantity (try 8Gi)",
                    args.node_memory
                )
            })?,
        ..NodeConfig::default()
    };
    let runtime = match args.runtime {
        RuntimeArg::Docker => Runtime::Docker,
        RuntimeArg::Scripted => Runtime::Scripted,
    };
    let emulator = Emulator::start(Config {
        port: args.port,
        runtime,
        node,
        preload: args.preload,
        tls: args.tls,
        ..Config::default()
    })
    .await?;
    emulator
        .write_kubeconfig(&kubeconfig)
        .with_context(|| format!("writing the kubeconfig to {}", kubeconfig.display()))?;
    println!("ready {}", emulator.url());
    wait_for_signal().await?;
    emulator.stop().await;
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

async fn load(kubeconfig: PathBuf, images: Vec<String>) -> anyhow::Result<()> {
    let url = kube_emulator::emulator::server_url(&kubeconfig)?;
    let client = kube_emulator::client::Client::from_kubeconfig(&kubeconfig).await?;
    client
        .load_images(&images)
        .await
        .with_context(|| format!("loading images into the emulator at {url}"))?;
    for image in &images {
        println!("loaded {image}");
    }
    Ok(())
}
