//! Plans: for one component, the stack, the Dockerfile, the input digest and the tag.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::ca::{self, CaBundle};
use crate::context::{self, EntryKind, ExtraFile, GENERATED_DOCKERFILE};
use crate::detect::{self, Detected};
use crate::digest::{self, DigestInputs, HashCache, HashedContext};
use crate::dockerfile::{self, GenOptions};
use crate::error::{Error, Result};
use crate::recipe;
use crate::spec::{BaseImages, ComponentSpec, StackKind};

/// Plans every spec, each on a blocking thread (hashing reads every file of
/// a component), with the results in the order of `specs`: the one planner
/// of image-builder's `plan`, `hash` and `build` and of the tags
/// kubectl-todo's `up`, `render`, `plan` and `doctor` name.
pub async fn plan_all(specs: Vec<ComponentSpec>, opts: &PlanOptions) -> Vec<Result<Plan>> {
    let tasks = specs.into_iter().map(|spec| {
        let opts = opts.clone();
        tokio::task::spawn_blocking(move || plan(&spec, &opts))
    });
    futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|joined| joined.expect("planning does not panic"))
        .collect()
}

/// The engine a build would use, if it answers within a moment. The
/// Dockerfile, and so the tag, depends on its builder, so plans made
/// without building are for that builder; with no engine, plan with
/// `PlanOptions::builder` unset and print [`NO_ENGINE_NOTE`].
pub async fn probe_engine() -> Option<crate::build::Engine> {
    tokio::time::timeout(
        std::time::Duration::from_secs(3),
        crate::build::Engine::connect(),
    )
    .await
    .ok()?
    .ok()
}

/// What planning without an engine assumes, for the commands to print.
pub const NO_ENGINE_NOTE: &str = "note: the Docker Engine is not reachable; image tags are computed for the classic builder, or for BuildKit where a component needs it (a CA bundle)";

/// Which builder the engine uses; it decides whether cache mounts are emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BuilderKind {
    Classic,
    #[serde(rename = "buildkit")]
    BuildKit,
}

#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// The builder of the engine that will build, or the one chosen by hand.
    /// `None` when no engine answered: each component is then planned for
    /// the builder that can build it (BuildKit when it needs a build secret,
    /// the classic one otherwise), as no engine's builder has been seen.
    pub builder: Option<BuilderKind>,
    /// Base image overrides from the command line; they win over the spec's.
    pub base_images: BaseImages,
    /// Use the per-file hash cache.
    pub use_cache: bool,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            builder: None,
            base_images: BaseImages::default(),
            use_cache: true,
        }
    }
}

/// What will be built for one component.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub component: String,
    pub stack: StackKind,
    /// Full Dockerfile text.
    pub dockerfile: String,
    /// The app's own Dockerfile (relative to the component), when not generated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dockerfile_path: Option<PathBuf>,
    pub digest: String,
    pub tag: String,
    /// Image repository name (without tag).
    pub image: String,
    pub port: u16,
    pub builder: BuilderKind,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    #[serde(skip)]
    pub dir: PathBuf,
    #[serde(skip)]
    pub dockerfile_name: String,
    #[serde(skip)]
    pub extra_files: Vec<ExtraFile>,
    #[serde(skip)]
    pub context: HashedContext,
    #[serde(skip)]
    pub build_args: BTreeMap<String, String>,
    #[serde(skip)]
    pub target: Option<String>,
    #[serde(skip)]
    pub platform: Option<String>,
    /// The base images the recipe uses (the spec's, overridden by the options').
    #[serde(skip)]
    pub base_images: BaseImages,
    /// The CA bundle the build trusts, served to BuildKit while building.
    #[serde(skip)]
    pub ca_cert: Option<CaBundle>,
}

impl Plan {
    /// `image:tag`.
    pub fn reference(&self) -> String {
        format!("{}:{}", self.image, self.tag)
    }
}

/// Make the plan for `spec`: detect, generate, walk, hash.
pub fn plan(spec: &ComponentSpec, opts: &PlanOptions) -> Result<Plan> {
    let dir = spec.dir()?;
    let component = spec.component_name(&dir);
    let image = spec.image_name(&dir);
    validate_repo(&image)?;
    let detected: Detected = detect::detect(&dir, spec)?;
    let port = spec.port.unwrap_or_else(|| detected.stack.default_port());
    crate::spec::check_build_arg_names(&spec.build_args)?;
    let base = spec.base_images.merged(&opts.base_images);
    python_version_check(&detected, &base)?;
    let builder = opts.builder.unwrap_or(if spec.ca_cert.is_some() {
        BuilderKind::BuildKit
    } else {
        BuilderKind::Classic
    });
    let ca_cert = spec
        .ca_cert
        .as_deref()
        .map(|p| ca_cert(p, builder))
        .transpose()?;
    let matcher = context::load_matcher(&dir, crate::ignore::stack_excludes(detected.stack))?;
    let entries = context::walk(&dir, &matcher)?;
    let generated = dockerfile::generate(
        &detected,
        &GenOptions {
            component: &component,
            port,
            base: &base,
            cache_mounts: builder == BuilderKind::BuildKit,
            ca_cert: ca_cert.is_some(),
            command: spec.command.as_deref(),
            build_args: spec.build_args.keys().cloned().collect(),
            top_level: recipe::top_level(
                entries
                    .iter()
                    .map(|e| (e.rel.as_str(), e.kind == EntryKind::Dir)),
            ),
        },
    );
    let (text, dockerfile_name) = match &generated {
        Some(t) => (t.clone(), GENERATED_DOCKERFILE.to_string()),
        None => {
            let rel = detected
                .dockerfile_path
                .clone()
                .expect("own-Dockerfile stack has a path");
            let abs = dir.join(&rel);
            let text = std::fs::read_to_string(&abs).map_err(|e| Error::io(&abs, e))?;
            let recipe = detect::recipe_in(&detect::FsTree(&dir), spec).ok();
            crate::own::refuse_root(&abs.display().to_string(), &text, recipe.map(|d| d.stack))?;
            (text, rel.to_string_lossy().replace('\\', "/"))
        }
    };

    let cache = if opts.use_cache {
        HashCache::load_for(&dir)
    } else {
        HashCache::disabled()
    };
    let ctx = digest::hash_entries(&dir, &entries, &cache)?;
    let present = generated.is_none()
        && ctx
            .entries
            .iter()
            .any(|e| e.kind == EntryKind::File && e.rel == dockerfile_name);
    let extra_files = context::extra_files(&dockerfile_name, &text, present);
    let digest = digest::input_digest(
        &ctx,
        &DigestInputs {
            dockerfile: &text,
            build_args: &spec.build_args,
            target: spec.target.as_deref(),
            platform: spec.platform.as_deref(),
            ca_cert: ca_cert.as_ref().map(|c| c.sha256.as_str()),
        },
    );
    let mut notes = detected.notes;
    if let Some(c) = &ca_cert {
        notes.push(if generated.is_some() {
            format!(
                "downloads trust the CA bundle {} ({} certificates), mounted as a BuildKit secret: it is in no layer",
                c.path.display(),
                c.certificates
            )
        } else {
            format!(
                "the CA bundle {} is the build secret `{}`: the Dockerfile's download steps trust it with `RUN --mount=type=secret,id={},target={} SSL_CERT_FILE={} …`",
                c.path.display(),
                ca::SECRET_ID,
                ca::SECRET_ID,
                ca::TARGET,
                ca::TARGET
            )
        });
    }
    Ok(Plan {
        component,
        stack: detected.stack,
        dockerfile: text,
        dockerfile_path: detected.dockerfile_path.clone(),
        tag: digest::tag_of(&digest),
        digest,
        image,
        port,
        builder,
        notes,
        dir,
        dockerfile_name,
        extra_files,
        context: ctx,
        build_args: spec.build_args.clone(),
        target: spec.target.clone(),
        platform: spec.platform.clone(),
        base_images: base,
        ca_cert,
    })
}

/// Load `--ca-cert`'s bundle, for a BuildKit build.
fn ca_cert(path: &std::path::Path, builder: BuilderKind) -> Result<CaBundle> {
    let bundle = ca::load(path)?;
    if builder == BuilderKind::Classic {
        return Err(Error::Invalid {
            what: format!("--ca-cert {}", path.display()),
            reason: "the bundle reaches the build as a BuildKit secret, and the classic builder has no secrets (only a layer would carry it, and it must stay out of the image)".into(),
            fix: "build with BuildKit: `--builder buildkit` (and unset DOCKER_BUILDKIT=0), on a Docker Engine 18.09 or later".into(),
        });
    }
    Ok(bundle)
}

/// An unsatisfiable Python version is an error unless both images are set by hand.
pub fn python_version_check(d: &Detected, base: &BaseImages) -> Result<()> {
    match d.python.as_ref().and_then(|p| p.version.error()) {
        Some(e) if base.builder.is_none() || base.runtime.is_none() => Err(e),
        _ => Ok(()),
    }
}

fn validate_repo(image: &str) -> Result<()> {
    let ok = !image.is_empty()
        && image.split('/').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-:".contains(c))
        });
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid {
            what: format!("image name `{image}`"),
            reason: "image names may hold only lowercase letters, digits, `.`, `_`, `-` and `/`"
                .into(),
            fix: "set `image:` (or `name:`/`project:`) in the project file to a valid name".into(),
        })
    }
}

/// Render plans as text for people.
pub fn render_text(plans: &[Plan]) -> String {
    let mut s = String::new();
    for (i, p) in plans.iter().enumerate() {
        if i > 0 {
            s.push('\n');
        }
        s.push_str(&format!("component: {}\n", p.component));
        s.push_str(&format!("stack:     {}\n", p.stack.as_str()));
        s.push_str(&format!("image:     {}\n", p.reference()));
        s.push_str(&format!("digest:    sha256:{}\n", p.digest));
        s.push_str(&format!("port:      {}\n", p.port));
        for n in &p.notes {
            s.push_str(&format!("note:      {n}\n"));
        }
        match &p.dockerfile_path {
            Some(path) => s.push_str(&format!("dockerfile: {} (the app's own)\n", path.display())),
            None => {
                s.push_str("dockerfile (generated):\n");
                for l in p.dockerfile.lines() {
                    s.push_str("  |");
                    if !l.is_empty() {
                        s.push(' ');
                        s.push_str(l);
                    }
                    s.push('\n');
                }
            }
        }
    }
    s
}
