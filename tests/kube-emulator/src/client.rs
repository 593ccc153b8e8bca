//! A small client for the emulator's own endpoints (`/emulator/v1/…`):
//! loading images onto the node and injecting faults. The test stand-ins for
//! `minikube image load` and `kind load` go through it.

use anyhow::Context as _;
use serde_json::{Value, json};

use crate::faults::{Denial, Fault};

pub struct Client {
    inner: kube::Client,
}

impl Client {
    pub fn new(url: &str) -> anyhow::Result<Client> {
        let config = kube::Config::new(
            url.parse()
                .with_context(|| format!("{url:?} is not a URL"))?,
        );
        Ok(Client {
            inner: kube::Client::try_from(config)?,
        })
    }

    /// A client for the emulator a kubeconfig points at (its current context), HTTPS included.
    pub async fn from_kubeconfig(path: &std::path::Path) -> anyhow::Result<Client> {
        let kubeconfig = kube::config::Kubeconfig::read_from(path)
            .with_context(|| format!("reading kubeconfig {}", path.display()))?;
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
        Ok(Client {
            inner: kube::Client::try_from(config)?,
        })
    }

    async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let req = http::Request::post(path)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(body)?)?;
        Ok(self.inner.request::<Value>(req).await?)
    }

    pub async fn load_images(&self, images: &[String]) -> anyhow::Result<()> {
        self.post("/emulator/v1/images", &json!({ "images": images }))
            .await?;
        Ok(())
    }

    pub async fn add_fault(&self, fault: &Fault) -> anyhow::Result<()> {
        self.post("/emulator/v1/faults", &serde_json::to_value(fault)?)
            .await?;
        Ok(())
    }

    pub async fn deny(&self, denial: &Denial) -> anyhow::Result<()> {
        self.post("/emulator/v1/denials", &serde_json::to_value(denial)?)
            .await?;
        Ok(())
    }
}
