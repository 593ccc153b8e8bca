//! Builds through the Docker Engine API (bollard): BuildKit where the engine has it,
//! the classic builder otherwise.

use std::collections::{HashMap, VecDeque};
use std::io::Write;

use bollard::Docker;
use bollard::models::{BuildInfo, BuildInfoAux, ContainerCreateBody};
use bollard::query_parameters::{
    BuildImageOptions, BuilderVersion, CreateContainerOptions, DownloadFromContainerOptions,
    RemoveContainerOptions, RemoveImageOptions,
};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::check::{self, Accounts, ImageFacts, RunAs};
use crate::context;
use crate::error::{BuildFailure, Error, Result};
use crate::plan::{BuilderKind, Plan};
use crate::session;

/// Label holding the full input digest.
pub const DIGEST_LABEL: &str = "dev.kubectl-todo.image-builder.digest";

/// What happens during a build, for a terminal or a caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A status line: "cached", "building", "loading into minikube", ...
    Status(String),
    /// A build step started (classic: `Step 3/9 : RUN ...`; BuildKit: a vertex).
    Step(String),
    /// Output of the current step.
    Output(String),
    /// The component is finished (with its final status word).
    Done(String),
}

/// Receives progress. Implementations must be cheap and thread-safe.
pub trait Progress: Send + Sync {
    fn event(&self, component: &str, event: Event);
}

/// Progress that goes nowhere.
pub struct NoProgress;
impl Progress for NoProgress {
    fn event(&self, _: &str, _: Event) {}
}

/// Progress sent through a channel.
impl Progress for mpsc::UnboundedSender<(String, Event)> {
    fn event(&self, component: &str, event: Event) {
        let _ = self.send((component.to_string(), event));
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Built,
    Cached,
}

/// The outcome for one component (the `-o json` object).
#[derive(Debug, Clone, Serialize)]
pub struct BuildResult {
    pub component: String,
    /// `repository:tag`
    pub image: String,
    pub tag: String,
    pub digest: String,
    pub id: String,
    pub size_bytes: u64,
    pub layers: usize,
    /// The `USER` as the image writes it.
    pub user: String,
    /// That user as numbers (`uid`, `gid`), what the pod runs as.
    #[serde(flatten)]
    pub run_as: RunAs,
    pub status: Status,
    pub loaded_to: Option<String>,
    pub pushed_ref: Option<String>,
}

/// A connection to the Docker Engine and what it can do.
#[derive(Clone)]
pub struct Engine {
    pub docker: Docker,
    pub builder: BuilderKind,
    /// The engine is not on this machine (tcp/ssh): the context is gzipped.
    pub remote: bool,
    pub version: String,
}

/// Translate a bollard error into an actionable one. The cause that matters
/// (a refused or forbidden socket) sits at the bottom of hyper's error chain.
pub fn engine_error(e: &bollard::errors::Error) -> Error {
    let mut causes = vec![e.to_string()];
    let mut io_kind = None;
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            io_kind = Some(io.kind());
        }
        causes.push(cause.to_string());
        source = cause.source();
    }
    causes.dedup();
    let text = causes.join(": ");
    let lower = text.to_ascii_lowercase();
    let fix = if io_kind == Some(std::io::ErrorKind::PermissionDenied)
        || lower.contains("permission denied")
    {
        "add your user to the `docker` group (`sudo usermod -aG docker $USER`, then log in again) or run with access to the socket".to_string()
    } else if matches!(
        io_kind,
        Some(std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused)
    ) || lower.contains("no such file")
        || lower.contains("connection refused")
        || lower.contains("socket")
        || lower.contains("connect")
    {
        "start the Docker Engine (`sudo systemctl start docker`, or start Docker Desktop) and check `docker info`; set DOCKER_HOST if it listens elsewhere".to_string()
    } else {
        "check `docker info` and the engine's logs".to_string()
    };
    Error::Engine { reason: text, fix }
}

impl Engine {
    /// Connect (honouring `DOCKER_HOST`) and find out which builder to use:
    /// `DOCKER_BUILDKIT=0|1` decides if set; otherwise BuildKit when the engine
    /// supports it (API 1.39 and later on Linux).
    pub async fn connect() -> Result<Engine> {
        let docker = Docker::connect_with_defaults().map_err(|e| engine_error(&e))?;
        let v = docker.version().await.map_err(|e| engine_error(&e))?;
        let api = v.api_version.clone().unwrap_or_default();
        let os = v.os.clone().unwrap_or_default();
        let supports_bk = os == "linux" && api_at_least(&api, 1, 39);
        let builder = match std::env::var("DOCKER_BUILDKIT").ok().as_deref() {
            Some("0") | Some("false") => BuilderKind::Classic,
            Some("1") | Some("true") if supports_bk => BuilderKind::BuildKit,
            _ if supports_bk => BuilderKind::BuildKit,
            _ => BuilderKind::Classic,
        };
        let host = std::env::var("DOCKER_HOST").unwrap_or_default();
        let remote = host.starts_with("tcp://")
            || host.starts_with("ssh://")
            || host.starts_with("http://")
            || host.starts_with("https://");
        Ok(Engine {
            docker,
            builder,
            remote,
            version: v.version.unwrap_or_default(),
        })
    }

    /// The same engine with a different builder.
    pub fn with_builder(mut self, b: BuilderKind) -> Self {
        self.builder = b;
        self
    }

    /// Whether `reference` exists locally; returns its inspection.
    pub async fn image(&self, reference: &str) -> Result<Option<bollard::models::ImageInspect>> {
        match self.docker.inspect_image(reference).await {
            Ok(i) => Ok(Some(i)),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(engine_error(&e)),
        }
    }

    /// The numbers the image `reference` of `plan` runs as, its `user`
    /// resolved; a named one through the image's own account files.
    pub async fn run_as(&self, plan: &Plan, reference: &str, user: &str) -> Result<RunAs> {
        let accounts = if check::names_someone(user) {
            self.accounts(reference).await?
        } else {
            Accounts::default()
        };
        check::run_as(reference, plan, user, &accounts)
    }

    /// The image's `/etc/passwd` and `/etc/group`, read from a container
    /// created from it and never started (nothing of the image runs).
    async fn accounts(&self, reference: &str) -> Result<Accounts> {
        let created = self
            .docker
            .create_container(
                None::<CreateContainerOptions>,
                ContainerCreateBody {
                    image: Some(reference.to_string()),
                    // An image without CMD cannot be created otherwise; it never starts.
                    cmd: Some(vec!["true".into()]),
                    network_disabled: Some(true),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| engine_error(&e))?;
        let read = async {
            Ok::<_, Error>(Accounts {
                passwd: self.file(&created.id, "/etc/passwd").await?,
                group: self.file(&created.id, "/etc/group").await?,
            })
        };
        let accounts = read.await;
        let _ = self
            .docker
            .remove_container(
                &created.id,
                Some(RemoveContainerOptions {
                    force: true,
                    ..Default::default()
                }),
            )
            .await;
        accounts
    }

    /// The text of the file at `path` in container `id`; empty when the
    /// container has no such file.
    async fn file(&self, id: &str, path: &str) -> Result<String> {
        let archive = self
            .docker
            .download_from_container(
                id,
                Some(DownloadFromContainerOptions {
                    path: path.to_string(),
                }),
            )
            .try_fold(Vec::new(), |mut all, chunk| async move {
                all.extend_from_slice(&chunk);
                Ok(all)
            })
            .await;
        let archive = match archive {
            Ok(a) => a,
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => return Ok(String::new()),
            Err(e) => return Err(engine_error(&e)),
        };
        let mut text = String::new();
        let mut tar = tar::Archive::new(archive.as_slice());
        let unreadable = |e: std::io::Error| Error::Engine {
            reason: format!("the engine's archive of {path} cannot be read: {e}"),
            fix: "check `docker info` and the engine's logs".into(),
        };
        let mut entries = tar.entries().map_err(unreadable)?;
        if let Some(entry) = entries.next() {
            let mut entry = entry.map_err(unreadable)?;
            std::io::Read::read_to_string(&mut entry, &mut text).map_err(unreadable)?;
        }
        Ok(text)
    }

    /// Remove an image reference (used to leave nothing half-done behind).
    pub async fn remove(&self, reference: &str) {
        let _ = self
            .docker
            .remove_image(
                reference,
                Some(RemoveImageOptions {
                    force: true,
                    // Parent layers may be the cache of a build running next to this one.
                    noprune: true,
                    ..Default::default()
                }),
                None,
            )
            .await;
    }
}

fn api_at_least(v: &str, major: u32, minor: u32) -> bool {
    let mut it = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let a = it.next().unwrap_or(0);
    let b = it.next().unwrap_or(0);
    (a, b) >= (major, minor)
}

/// Options of a build.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Fail when the image is larger than this many bytes.
    pub max_size: Option<u64>,
    /// Rebuild even when the tag exists.
    pub force: bool,
}

/// Labels put on the image: OCI source, revision, created (never the wall clock) and
/// the input digest.
pub fn labels(plan: &Plan) -> HashMap<String, String> {
    let mut l = HashMap::new();
    l.insert(DIGEST_LABEL.to_string(), format!("sha256:{}", plan.digest));
    let git = |args: &[&str]| -> Option<String> {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(&plan.dir)
            .args(args)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (!s.is_empty()).then_some(s)
    };
    let source = git(&["remote", "get-url", "origin"])
        .unwrap_or_else(|| format!("file://{}", plan.dir.display()));
    l.insert("org.opencontainers.image.source".into(), source);
    if let Some(rev) = git(&["rev-parse", "HEAD"]) {
        l.insert("org.opencontainers.image.revision".into(), rev);
    }
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .or_else(|| git(&["log", "-1", "--format=%ct"]).and_then(|s| s.parse().ok()));
    if let Some(ts) = epoch.and_then(|e| jiff::Timestamp::from_second(e).ok()) {
        l.insert("org.opencontainers.image.created".into(), ts.to_string());
    }
    l
}

/// Build one planned component (or find it cached), then check it.
pub async fn build(
    engine: &Engine,
    plan: &Plan,
    opts: &BuildOptions,
    progress: &dyn Progress,
) -> Result<BuildResult> {
    let reference = plan.reference();
    if plan.builder != engine.builder {
        return Err(Error::Invalid {
            what: format!("plan for {}", plan.component),
            reason: format!(
                "it was made for the {:?} builder but the engine uses {:?}",
                plan.builder, engine.builder
            ),
            fix: "make the plan with the engine's builder (PlanOptions::builder = engine.builder)"
                .into(),
        });
    }
    if !opts.force
        && let Some(img) = engine.image(&reference).await?
    {
        progress.event(
            &plan.component,
            Event::Status(format!("{reference} cached")),
        );
        let facts = check_or_remove(engine, plan, &reference, &img, opts, false).await?;
        progress.event(&plan.component, Event::Done("cached".into()));
        return Ok(result(plan, facts, Status::Cached));
    }
    progress.event(
        &plan.component,
        Event::Status(format!(
            "building {reference} ({} builder)",
            match engine.builder {
                BuilderKind::BuildKit => "BuildKit",
                BuilderKind::Classic => "classic",
            }
        )),
    );
    run_build(engine, plan, progress).await?;
    let img = engine.image(&reference).await?.ok_or_else(|| {
        Error::Build(Box::new(BuildFailure {
            component: plan.component.clone(),
            image: reference.clone(),
            step: None,
            message: "the engine reported success but the image is missing".into(),
            last_lines: vec![],
            fix: "run the build again; check `docker images` and the engine's logs".into(),
        }))
    })?;
    let facts = check_or_remove(engine, plan, &reference, &img, opts, true).await?;
    progress.event(&plan.component, Event::Done("built".into()));
    Ok(result(plan, facts, Status::Built))
}

async fn check_or_remove(
    engine: &Engine,
    plan: &Plan,
    reference: &str,
    img: &bollard::models::ImageInspect,
    opts: &BuildOptions,
    fresh: bool,
) -> Result<ImageFacts> {
    // A defect of the image itself (a root or unknown user): one just built
    // goes, as it is of no use. A cached one stays: it may have been good for
    // whoever built it, and every run checks a cached image again anyway.
    let run_as = match engine.run_as(plan, reference, &check::user_of(img)).await {
        Ok(run_as) => run_as,
        Err(e) => {
            if fresh && matches!(e, Error::Check { .. }) {
                engine.remove(reference).await;
            }
            return Err(e);
        }
    };
    // Over the --max-size budget the image is still good: it stays, for a
    // run with a larger budget to use without building again.
    check::check(reference, img, run_as, opts.max_size)
}

fn result(plan: &Plan, f: ImageFacts, status: Status) -> BuildResult {
    BuildResult {
        component: plan.component.clone(),
        image: plan.reference(),
        tag: plan.tag.clone(),
        digest: format!("sha256:{}", plan.digest),
        id: f.id,
        size_bytes: f.size_bytes,
        layers: f.layers,
        user: f.user,
        run_as: f.run_as,
        status,
        loaded_to: None,
        pushed_ref: None,
    }
}

/// Writes tar bytes into a channel in large chunks.
struct ChanWriter {
    tx: mpsc::Sender<Bytes>,
    buf: Vec<u8>,
}

const CHUNK: usize = 512 * 1024;

impl Write for ChanWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx.blocking_send(chunk).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "engine closed the upload")
        })
    }
}

/// Stream the context tar on a blocking thread; returns the body stream and a handle
/// that reports tar errors.
fn spawn_tar(
    plan: &Plan,
    gzip: bool,
) -> (
    impl futures::Stream<Item = Bytes> + Send + 'static,
    tokio::task::JoinHandle<Result<()>>,
) {
    let (tx, rx) = mpsc::channel::<Bytes>(8);
    let dir = plan.dir.clone();
    let ctx = plan.context.clone();
    let extra = plan.extra_files.clone();
    let handle = tokio::task::spawn_blocking(move || -> Result<()> {
        let w = ChanWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        };
        let mut w = if gzip {
            let gz = flate2::write::GzEncoder::new(w, flate2::Compression::fast());
            let gz = context::write_tar(&dir, &ctx, &extra, gz)?;
            gz.finish()
                .map_err(|e| Error::io("<build context tar>", e))?
        } else {
            context::write_tar(&dir, &ctx, &extra, w)?
        };
        w.flush().map_err(|e| Error::io("<build context tar>", e))?;
        Ok(())
    });
    let stream =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (b, rx)) });
    (stream, handle)
}

struct StepTracker {
    step: Option<String>,
    last: VecDeque<String>,
    names: HashMap<String, String>,
}

impl StepTracker {
    fn push_line(&mut self, l: &str) {
        let l = l.trim_end();
        if l.is_empty() {
            return;
        }
        if self.last.len() >= 15 {
            self.last.pop_front();
        }
        self.last.push_back(l.to_string());
    }
}

/// bollard on a BuildKit build opens a session of its own, which cannot serve
/// secrets; with a CA bundle the build uses [`session`]'s instead. bollard is asked
/// for a classic build, so that it opens none, and this rewrites the request to
/// the BuildKit build on that session it stands for.
fn on_own_session(docker: &Docker) -> Docker {
    docker.clone().with_request_modifier(|mut req| {
        if req.uri().path().ends_with("/build") {
            let uri = req.uri().clone();
            let query: Vec<String> = uri
                .query()
                .unwrap_or("")
                .split('&')
                .map(|kv| {
                    if kv == "version=1" {
                        "version=2".to_string()
                    } else {
                        kv.to_string()
                    }
                })
                .collect();
            let pq = format!("{}?{}", uri.path(), query.join("&"));
            let mut parts = uri.into_parts();
            if let Ok(pq) = pq.parse() {
                parts.path_and_query = Some(pq);
                if let Ok(u) = hyper::Uri::from_parts(parts) {
                    *req.uri_mut() = u;
                }
            }
        }
        req
    })
}

async fn run_build(engine: &Engine, plan: &Plan, progress: &dyn Progress) -> Result<()> {
    let reference = plan.reference();
    let buildkit = engine.builder == BuilderKind::BuildKit;
    let session_id = format!("image-builder-{}-{}", plan.tag, std::process::id());
    let (docker, session) = match &plan.ca_cert {
        Some(ca) if buildkit => {
            let secrets = HashMap::from([(
                crate::ca::SECRET_ID.to_string(),
                Bytes::copy_from_slice(ca.bytes()),
            )]);
            let s = session::start(&session_id, secrets).await?;
            (on_own_session(&engine.docker), Some(s))
        }
        _ => (engine.docker.clone(), None),
    };
    let options = BuildImageOptions {
        dockerfile: plan.dockerfile_name.clone(),
        t: Some(reference.clone()),
        rm: true,
        forcerm: true,
        labels: Some(labels(plan)),
        buildargs: (!plan.build_args.is_empty())
            .then(|| plan.build_args.clone().into_iter().collect()),
        target: plan.target.clone().unwrap_or_default(),
        platform: plan.platform.clone().unwrap_or_default(),
        version: if buildkit && session.is_none() {
            BuilderVersion::BuilderBuildKit
        } else {
            // Classic, or BuildKit on our own session (see `on_own_session`).
            BuilderVersion::BuilderV1
        },
        session: buildkit.then_some(session_id),
        ..Default::default()
    };
    let (body, tar_handle) = spawn_tar(plan, engine.remote);
    let mut stream = docker.build_image(options, None, Some(bollard::body_stream(body)));
    let mut t = StepTracker {
        step: None,
        last: VecDeque::new(),
        names: HashMap::new(),
    };
    let mut failure: Option<String> = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => handle_info(&info, &mut t, &plan.component, progress, &mut failure),
            Err(bollard::errors::Error::DockerStreamError { error }) => {
                failure = Some(error);
                break;
            }
            Err(e) => {
                failure = Some(e.to_string());
                break;
            }
        }
    }
    drop(stream);
    drop(session);
    let tar_result = tar_handle.await.unwrap_or_else(|e| {
        Err(Error::Invalid {
            what: "build context".into(),
            reason: format!("the tar writer crashed: {e}"),
            fix: "report this bug".into(),
        })
    });
    if let Err(e) = tar_result {
        // A context error explains a failed upload better than the engine's message.
        if failure.is_some() || !matches!(e, Error::Io { .. }) {
            engine.remove(&reference).await;
            return Err(e);
        }
    }
    if let Some(message) = failure {
        engine.remove(&reference).await;
        return Err(Error::Build(Box::new(BuildFailure {
            component: plan.component.clone(),
            image: reference,
            fix: failure_fix(&message, plan),
            step: t.step.clone(),
            message,
            last_lines: t.last.into_iter().collect(),
        })));
    }
    Ok(())
}

fn failure_fix(message: &str, plan: &Plan) -> String {
    let m = message.to_ascii_lowercase();
    let df = match &plan.dockerfile_path {
        Some(p) => format!("{}", plan.dir.join(p).display()),
        None => "the generated Dockerfile (`image-builder plan` shows it)".into(),
    };
    if m.contains("no space left") {
        "free disk space for the engine (`docker system prune`, `docker builder prune`) and run the build again".into()
    } else if m.contains("pull access denied")
        || m.contains("not found: manifest unknown")
        || m.contains("failed to resolve")
        || m.contains("no such host")
        || m.contains("repository does not exist")
    {
        "a base image cannot be pulled: make it available locally (`docker pull`/`docker load`) or choose another with `--base-image builder=REF --base-image runtime=REF`".into()
    } else if m.contains("dockerfile parse error") || m.contains("unknown instruction") {
        format!("correct the syntax error in {df}")
    } else {
        format!(
            "fix the failing step shown above in {df} (or the app code it runs), then build again"
        )
    }
}

fn handle_info(
    info: &BuildInfo,
    t: &mut StepTracker,
    component: &str,
    progress: &dyn Progress,
    failure: &mut Option<String>,
) {
    if let Some(err) = info.error_detail.as_ref().and_then(|d| d.message.clone()) {
        *failure = Some(err);
        return;
    }
    if let Some(s) = &info.stream {
        for line in s.lines() {
            if line.starts_with("Step ") {
                t.step = Some(line.to_string());
                t.last.clear();
                progress.event(component, Event::Step(line.to_string()));
            } else if let Some(id) = line.strip_prefix(" ---> ")
                && id.len() == 12
                && id.bytes().all(|b| b.is_ascii_hexdigit())
            {
                progress.event(component, Event::Output(line.to_string()));
            } else if !line.trim().is_empty() {
                t.push_line(line);
                progress.event(component, Event::Output(line.trim_end().to_string()));
            }
        }
    }
    if let Some(BuildInfoAux::BuildKit(st)) = &info.aux {
        for v in &st.vertexes {
            if !v.name.is_empty() {
                let known = t.names.insert(v.digest.clone(), v.name.clone()).is_some();
                if !known && (v.started.is_some() || v.cached) {
                    t.step = Some(v.name.clone());
                    t.last.clear();
                    progress.event(
                        component,
                        Event::Step(if v.cached {
                            format!("{} (cached)", v.name)
                        } else {
                            v.name.clone()
                        }),
                    );
                } else if !known {
                    t.names.remove(&v.digest);
                }
            }
            if !v.error.is_empty() {
                t.step = Some(v.name.clone());
                if failure.is_none() {
                    *failure = Some(v.error.clone());
                }
            }
        }
        for l in &st.logs {
            let text = String::from_utf8_lossy(&l.msg);
            for line in text.lines() {
                t.push_line(line);
                progress.event(component, Event::Output(line.trim_end().to_string()));
            }
        }
    }
}

/// Build several components concurrently; results come back in the input order.
pub async fn build_all(
    engine: &Engine,
    plans: &[Plan],
    opts: &BuildOptions,
    progress: &dyn Progress,
) -> Vec<Result<BuildResult>> {
    futures::future::join_all(plans.iter().map(|p| build(engine, p, opts, progress))).await
}
