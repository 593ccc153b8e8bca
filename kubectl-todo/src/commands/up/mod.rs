//! `kubectl todo up`: from source to a healthy app in one command.
//!
//! 1. read the project, connect to the cluster and the Docker Engine, plan
//!    the images (tags are input hashes), read the Secret and what the
//!    cluster holds — all at once, nothing written;
//! 2. stop here when nothing changed (no build, no load, no write), or with
//!    `--dry-run` print the diff, or when another run holds the lock;
//! 3. build what is missing in parallel and load or push it, still writing
//!    nothing to the app's namespace, so that a failed build or check
//!    leaves the cluster as it was;
//! 4. under the app's lock: give the Secret the key of its checksum if it
//!    has none, look again and stop if another run deployed the same
//!    meanwhile, apply with server-side apply and prune, record the revision;
//! 5. wait for the rollout through watches, stopping early with doctor's
//!    diagnosis, and print the URLs.

mod diff;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use image_builder::build::Engine;

use crate::apply::{self, Options};
use crate::cli::WaitArgs;
use crate::context;
use crate::pipeline::{self, images, target, unchanged};
use crate::project::Project;
use crate::render::{self, Inputs, Object};
use crate::settings::Settings;

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  kubectl todo up
  kubectl todo up --dry-run
  kubectl todo up --context kind-dev --timeout 10m
  kubectl todo up --push registry.example:5000
  kubectl todo up --image backend=registry.example/todo-backend:1.2.3

Exit status: 0 the app is up, 1 it is not (the reason is printed), 130 interrupted (Ctrl-C), 143 SIGTERM, 129 SIGHUP.")]
pub struct Args {
    /// Show what would change (a diff against the cluster) and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Load images into this kind of local cluster (default: told by the context's name).
    #[arg(long, value_enum, value_name = "KIND")]
    pub load: Option<image_builder::load::LoadInto>,
    /// Push images to this registry (for remote clusters) instead of loading them.
    #[arg(long, value_name = "REGISTRY", conflicts_with = "load", value_parser = crate::cli::parse_registry)]
    pub push: Option<String>,
    /// Deploy this image for a component instead of building one (repeatable).
    #[arg(long = "image", value_name = "COMPONENT=REF", value_parser = render::images::parse_override)]
    pub images: Vec<(String, String)>,
    #[command(flatten)]
    pub wait: WaitArgs,
    /// Take over fields another field manager owns.
    #[arg(long)]
    pub force_conflicts: bool,
    /// Wait up to this many seconds for another run to release the app's lock.
    #[arg(long, value_name = "SECONDS")]
    pub wait_for_lock: Option<u64>,
}

pub async fn run(settings: &Settings, args: Args) -> anyhow::Result<ExitCode> {
    let project = settings.load_project()?;
    let overrides = render::images::validate_overrides(&project, &args.images)?;
    let builds_something = project
        .components
        .iter()
        .any(|c| !overrides.contains_key(&c.name));
    let engine = async {
        if builds_something {
            Engine::connect().await.map(Some)
        } else {
            Ok(None)
        }
    };
    let (conn, engine) = tokio::join!(pipeline::connect(settings, &project), engine);
    let conn = conn?;
    let engine = engine?;
    let target = target::Target::choose(args.push.as_deref(), args.load, &conn.context);
    let plans = async {
        match &engine {
            Some(engine) => render::images::plans(&project, &overrides, Some(engine.builder)).await,
            None => Ok(Vec::new()),
        }
    };
    let (plans, secret, observed) = tokio::join!(
        plans,
        pipeline::secret_data(&conn.client, &project),
        unchanged::observe(&conn.client, &project),
    );
    // What the app's own files refuse comes first: no Secret makes it build.
    let plans = plans?;
    let secret = secret.map_err(|e| context::unreachable(e, &conn))?;
    let observed = observed.map_err(|e| context::unreachable(e.into(), &conn))?;
    let redact = secret
        .as_ref()
        .and_then(|s| s.data.as_ref())
        .map(crate::secrets::redactions)
        .unwrap_or_default();
    // As read, for telling whether anything changed: a Secret without the
    // key of its checksum gets one under the lock.
    let secret_checksum = secret.as_ref().and_then(crate::secrets::checksum);
    let render_with = |images: BTreeMap<String, String>,
                       secret_checksum: Option<String>,
                       users: render::Users| {
        render::objects(
            &project,
            &Inputs {
                images,
                secret_checksum,
                users,
            },
        )
    };

    let last_images = observed
        .last
        .as_ref()
        .map(|(s, _)| s.images.clone())
        .unwrap_or_default();
    let built = match &engine {
        Some(engine) => images::all_built(engine, &plans).await,
        None => true,
    };
    let users = images::users(engine.as_ref(), &plans).await;
    let expected = images::expected_references(&plans, &target, &last_images).map(|mut refs| {
        refs.extend(overrides.clone());
        refs
    });
    let watch = pipeline::Watch::new(settings, &conn, &project, redact, args.wait.settle());

    if let Some(expected) = &expected {
        let rendered = render_with(expected.clone(), secret_checksum.clone(), users.clone());
        let manifests: Vec<_> = rendered.iter().map(Object::to_json).collect();
        let on_node = match &target {
            target::Target::Load(_) => {
                let local: Vec<String> = plans.iter().map(|p| p.reference()).collect();
                unchanged::nodes_have(&observed.nodes, &local)
            }
            _ => true,
        };
        if built && on_node && unchanged::nothing_to_apply(&manifests, &observed) {
            if args.dry_run {
                println!("no changes: the cluster runs this revision already");
                return Ok(ExitCode::SUCCESS);
            }
            let revision = observed.last.as_ref().map_or(0, |(s, _)| s.revision);
            eprintln!("nothing changed since revision {revision}: no build, no load, no apply");
            return watch.finish(&manifests, revision, false).await;
        }
    }

    if args.dry_run {
        let dry = DryRun {
            conn: &conn,
            project: &project,
            plans: &plans,
            engine: engine.as_ref(),
            users: &users,
            target: &target,
            overrides: &overrides,
            observed: &observed,
            force_conflicts: args.force_conflicts,
        };
        return dry
            .report(|refs| render_with(refs, secret_checksum.clone(), users.clone()))
            .await;
    }
    // Another run holds the lock: said now, not after a build.
    if let (None, Some(busy)) = (args.wait_for_lock, observed.busy) {
        return Err(busy.into());
    }

    // Building and delivering the images writes nothing to the app's
    // namespace: done before it is created and locked, so that a build or
    // a check that fails leaves the cluster as it was.
    let mut refs = overrides.clone();
    let mut users = users;
    if let Some(engine) = &engine {
        let delivered = apply::interrupt::unless_signalled(async {
            let progress = image_builder::term::TermProgress::new(true);
            let delivered =
                images::build_and_deliver(engine, &plans, &target, &conn.client, &progress).await;
            progress.finish();
            Ok(delivered?)
        })
        .await?;
        refs.extend(delivered);
        users = images::users(Some(engine), &plans).await;
    }
    apply::ensure_namespace(&conn.client, &project.namespace).await?;
    let work = async {
        let secret_checksum = pipeline::secret_checksum(&conn.client, &project).await?;
        let rendered = render_with(refs.clone(), secret_checksum, users.clone());
        let manifests: Vec<_> = rendered.iter().map(Object::to_json).collect();
        // Another run may have deployed the same since the look above (it
        // held the lock while this one built or waited): looked at again, as
        // a fresh run would, so that it is not applied as a revision twice.
        let mut now = unchanged::observe(&conn.client, &project).await?;
        // The lock it sees is this run's own.
        now.busy = None;
        if unchanged::nothing_to_apply(&manifests, &now) {
            let revision = now.last.as_ref().map_or(0, |(s, _)| s.revision);
            eprintln!("nothing to apply: revision {revision} holds these objects already");
            return anyhow::Ok((manifests, revision, false));
        }
        let options = Options {
            force_conflicts: args.force_conflicts,
            origin: "up".into(),
        };
        let done = apply::apply(&conn.client, &project, &manifests, refs, &options).await?;
        for object in &done.pruned {
            eprintln!("pruned {object}");
        }
        eprintln!(
            "applied revision {} ({} objects) to namespace {}",
            done.revision,
            done.applied.len(),
            project.namespace
        );
        anyhow::Ok((manifests, done.revision, true))
    };
    // The lock is held through the rollout, so that a failed rollout is
    // recorded in its revision before another run starts.
    let wait_for_lock = args.wait_for_lock.map(Duration::from_secs);
    pipeline::under_lock(&conn, &project, wait_for_lock, async {
        let (manifests, revision, applied) =
            apply::interrupt::unless_interrupted(&conn.client, &project, work).await?;
        watch.finish(&manifests, revision, applied).await
    })
    .await
}

/// What `up --dry-run` compares, settled by the reads every `up` makes.
struct DryRun<'a> {
    conn: &'a context::Connection,
    project: &'a Project,
    plans: &'a [image_builder::plan::Plan],
    /// `None` when every component's image is given with `--image`.
    engine: Option<&'a Engine>,
    users: &'a render::Users,
    target: &'a target::Target,
    overrides: &'a BTreeMap<String, String>,
    observed: &'a unchanged::Observed,
    force_conflicts: bool,
}

impl DryRun<'_> {
    /// Says which images would be built, prints the diff against the
    /// cluster, and changes nothing.
    async fn report(
        self,
        render_with: impl Fn(BTreeMap<String, String>) -> Vec<Object>,
    ) -> anyhow::Result<ExitCode> {
        let DryRun {
            conn,
            project,
            plans,
            engine,
            users,
            target,
            overrides,
            observed,
            force_conflicts,
        } = self;
        let mut refs = overrides.clone();
        for plan in plans {
            let reference = plan.reference();
            let present = match engine {
                Some(e) => matches!(e.image(&reference).await, Ok(Some(_))),
                None => true,
            };
            let verb = if present {
                "is built"
            } else {
                "would be built"
            };
            eprintln!("{}: image {reference} {verb}", plan.component);
            if let Some(note) = images::user_note(plan, users) {
                eprintln!("{}: {note}", plan.component);
            }
            let deployed = match target {
                target::Target::Push(registry) => format!("{registry}/{reference}"),
                _ => reference,
            };
            refs.insert(plan.component.clone(), deployed);
        }
        if !plans.is_empty() {
            eprintln!("images go to: {}", target.describe());
        }
        let rendered = render_with(refs);
        let changes = diff::diff(
            &conn.client,
            project,
            &rendered,
            &observed.members,
            force_conflicts,
        )
        .await?;
        print!("{}", changes.text);
        eprintln!(
            "dry run: {} to create, {} to change, {} to prune; nothing was changed",
            changes.created, changes.changed, changes.pruned
        );
        Ok(ExitCode::SUCCESS)
    }
}
