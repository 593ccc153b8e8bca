//! Runs one forward from the command line until it is killed, for
//! `bench/forward.sh` (the `dev` command will be its real driver):
//! `forward NAMESPACE SERVICE PORT PROJECT COMPONENT`, cluster from $KUBECONFIG.

use std::sync::Arc;

use kubectl_todo::forward::{Forward, Options, PortChoice, Target};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [namespace, service, port, project, component] = args.as_slice() else {
        anyhow::bail!("usage: forward NAMESPACE SERVICE PORT PROJECT COMPONENT");
    };
    let port: u16 = port.parse()?;
    let forward = Forward::start(
        kube::Client::try_default().await?,
        Target {
            namespace: namespace.clone(),
            service: service.clone(),
            port,
        },
        &PortChoice {
            address: "127.0.0.1".parse()?,
            pinned: None,
            own: port,
            project: project.clone(),
            component: component.clone(),
        },
        Options::default(),
        Arc::new(|event| eprintln!("{event}")),
    )
    .await?;
    println!("forwarding {}", forward.url());
    tokio::signal::ctrl_c().await?;
    Ok(())
}
