//! One turn of the loop: `up`'s pipeline, run after a change. Plan (the
//! digests), read the Secret and the cluster, and when anything differs
//! build what changed, deliver it, apply under the lock and wait for the
//! rollout. The status lines go to stderr, one per step.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use image_builder::build::{self, BuildResult, Engine, Progress};
use image_builder::plan::Plan;
use tokio::task::JoinHandle;

use super::watch::{Context, Files};
use crate::apply::{self, interrupt::Signal};
use crate::context::Connection;
use crate::pipeline::{self, display, images, target::Target, unchanged};
use crate::project::Project;
use crate::render::{self, Inputs, Object};
use crate::settings::Settings;

/// What the session keeps between turns.
#[derive(Default)]
pub struct State {
    /// The project and image tags of the last turn that left them running,
    /// to skip the cluster entirely when a change altered neither.
    pub running: Option<(Project, Vec<String>)>,
    /// The reference deployed per component: the images of components the
    /// session does not watch stay as the first turn left them.
    pub deployed: BTreeMap<String, String>,
}

pub enum Outcome {
    /// Neither the project nor a digest changed since the last turn: the
    /// cluster was not even asked.
    Same,
    /// Nothing differs from what runs: nothing was built or written.
    Unchanged { revision: u32 },
    /// A revision was applied and rolled out, in so long since the turn began.
    Applied {
        revision: u32,
        took: std::time::Duration,
    },
}

/// What every turn works with.
pub struct Turn<'a> {
    pub settings: &'a Settings,
    pub conn: &'a Connection,
    pub engine: &'a Engine,
    pub target: &'a Target,
    pub watched: &'a [String],
    pub wait: pipeline::Wait,
    pub first: bool,
    /// Set when the session is asked to stop (the signal's name).
    pub stop: tokio::sync::watch::Receiver<Option<Signal>>,
}

/// The session was stopped while a turn held the lock; the turn stopped
/// where it was and released it.
#[derive(Debug, thiserror::Error)]
#[error("stopped by {}", .0.name())]
pub struct Stopped(pub Signal);

impl Turn<'_> {
    /// Runs the turn. `files` watches the watched components' build
    /// contexts as soon as they are planned, even when the turn fails later
    /// (a build error): the files to watch are known. A watch the first
    /// turn cannot add (the inotify limit) ends it before anything is built
    /// or applied; a later turn says so and goes on.
    pub async fn run(
        &self,
        project: &Project,
        state: &mut State,
        files: &mut Files,
        early: Option<Early>,
    ) -> anyhow::Result<Outcome> {
        let started = Instant::now();
        let frozen = if self.first {
            BTreeMap::new()
        } else {
            frozen(state, self.watched)
        };
        let plans = render::images::plans(project, &frozen, Some(self.engine.builder)).await?;
        let contexts = plans
            .iter()
            .filter(|p| self.watched.contains(&p.component))
            .map(Context::of)
            .collect::<Result<_, _>>()?;
        if let Err(e) = files.sync(contexts) {
            if self.first {
                return Err(e.into());
            }
            eprint!("{}", crate::report::render(&e.into(), self.settings));
        }
        let tags: Vec<String> = plans.iter().map(Plan::reference).collect();
        if state.running.as_ref() == Some(&(project.clone(), tags.clone())) {
            return Ok(Outcome::Same);
        }
        let client = &self.conn.client;
        // An early build is the turn's own when it built images this plan
        // names; one for other files is dropped, which stops it.
        let references: BTreeSet<String> = plans.iter().map(Plan::reference).collect();
        let early = early.filter(|e| e.references.is_subset(&references));
        let rest: Vec<Plan> = plans
            .iter()
            .filter(|p| {
                early
                    .as_ref()
                    .is_none_or(|e| !e.references.contains(&p.reference()))
            })
            .cloned()
            .collect();
        // An image the engine lacks is needed whatever the cluster runs: it
        // is built and delivered while the cluster is read, before the
        // lock, as `up` builds (that writes nothing to the namespace).
        let lacking = lacking(self.engine, &rest).await;
        let reads = async {
            tokio::join!(
                pipeline::secret_data(client, project),
                unchanged::observe(client, project),
            )
        };
        let builds = async {
            let (mut built, now) = tokio::try_join!(
                async {
                    match early {
                        Some(early) => early.finish(self.engine).await,
                        None => Ok(Vec::new()),
                    }
                },
                images::build(self.engine, &lacking, &Lines),
            )?;
            built.extend(now);
            if built.is_empty() {
                return Ok(BTreeMap::new());
            }
            images::deliver(self.engine, &built, self.target, client, &Lines).await
        };
        let mut stop = self.stop.clone();
        let ((secret, observed), delivered) = tokio::select! {
            both = async { tokio::join!(reads, builds) } => both,
            signal = stop.wait_for(Option::is_some) => {
                let signal = signal.ok().and_then(|s| *s).unwrap_or(Signal::Interrupt);
                return Err(Stopped(signal).into());
            }
        };
        let delivered = delivered?;
        let secret = secret.map_err(|e| crate::context::unreachable(e, self.conn))?;
        let observed = observed.map_err(|e| crate::context::unreachable(e.into(), self.conn))?;
        let redact = secret
            .as_ref()
            .and_then(|s| s.data.as_ref())
            .map(crate::secrets::redactions)
            .unwrap_or_default();
        let secret_checksum = secret.as_ref().and_then(crate::secrets::checksum);
        // Every plan's image the engine has, kept or just built, resolved now
        // and again after a build.
        let users_now = images::users(Some(self.engine), &plans).await;
        let render_with = |images: BTreeMap<String, String>,
                           secret_checksum: Option<String>,
                           users: &render::Users| {
            let objects = render::objects(
                project,
                &Inputs {
                    images,
                    secret_checksum,
                    users: users.clone(),
                },
            );
            objects.iter().map(Object::to_json).collect::<Vec<_>>()
        };
        let last_images = observed
            .last
            .as_ref()
            .map(|(s, _)| s.images.clone())
            .unwrap_or_default();
        let last_revision = observed.last.as_ref().map_or(0, |(s, _)| s.revision);

        // Any other plan needs delivering unless the last revision already
        // runs its image (and, loaded, the node has it).
        let mut changed = Vec::new();
        let mut kept = frozen.clone();
        for plan in plans
            .iter()
            .filter(|p| !delivered.contains_key(&p.component))
        {
            let expected =
                images::expected_references(std::slice::from_ref(plan), self.target, &last_images)
                    .and_then(|refs| refs.into_values().next());
            let on_node = match self.target {
                Target::Load(_) => unchanged::nodes_have(&observed.nodes, &[plan.reference()]),
                _ => true,
            };
            match expected {
                Some(reference)
                    if on_node && last_images.get(&plan.component) == Some(&reference) =>
                {
                    kept.insert(plan.component.clone(), reference);
                }
                _ => changed.push(plan.clone()),
            }
        }
        if changed.is_empty()
            && delivered.is_empty()
            && unchanged::nothing_to_apply(
                &render_with(kept.clone(), secret_checksum.clone(), &users_now),
                &observed,
            )
        {
            state.running = Some((project.clone(), tags));
            state.deployed = kept;
            return Ok(Outcome::Unchanged {
                revision: last_revision,
            });
        }

        apply::ensure_namespace(client, &project.namespace).await?;
        let watch = pipeline::Watch::new(self.settings, self.conn, project, redact, self.wait);
        let work = async {
            let mut refs = kept.clone();
            refs.extend(delivered);
            let mut users = users_now.clone();
            if !changed.is_empty() {
                let progress = Lines;
                let delivered = images::build_and_deliver(
                    self.engine,
                    &changed,
                    self.target,
                    client,
                    &progress,
                )
                .await?;
                refs.extend(delivered);
                users = images::users(Some(self.engine), &plans).await;
            }
            // Keyed under the lock: a Secret that has no checksum key yet gets it here.
            let secret_checksum = pipeline::secret_checksum(client, project).await?;
            let manifests = render_with(refs.clone(), secret_checksum, &users);
            let options = apply::Options {
                force_conflicts: false,
                origin: "dev".into(),
            };
            let done = apply::apply(client, project, &manifests, refs.clone(), &options).await?;
            for object in &done.pruned {
                eprintln!("pruned {object}");
            }
            eprintln!(
                "applied revision {} ({} objects)",
                done.revision,
                done.applied.len()
            );
            anyhow::Ok((manifests, done.revision, refs))
        };
        let body = async {
            let (manifests, revision, refs) = work.await?;
            watch
                .rollout(&manifests, revision, true, &display::Lines)
                .await?;
            anyhow::Ok((revision, refs))
        };
        let mut stop = self.stop.clone();
        let (revision, refs) = pipeline::under_lock(self.conn, project, None, async {
            tokio::select! {
                result = body => result,
                signal = stop.wait_for(Option::is_some) => {
                    let signal = signal.ok().and_then(|s| *s).unwrap_or(Signal::Interrupt);
                    // A revision cut short while applying says so, as `up`'s would.
                    let store = crate::history::store::Store::new(client.clone(), &project.namespace, &project.name);
                    let _ = store.mark_interrupted(signal.name()).await;
                    Err(Stopped(signal).into())
                }
            }
        })
        .await?;
        state.running = Some((project.clone(), tags));
        state.deployed = refs;
        Ok(Outcome::Applied {
            revision,
            took: started.elapsed(),
        })
    }
}

/// The images of components the session does not watch stay as the first
/// turn deployed them.
fn frozen(state: &State, watched: &[String]) -> BTreeMap<String, String> {
    state
        .deployed
        .iter()
        .filter(|(c, _)| !watched.contains(c))
        .map(|(c, r)| (c.clone(), r.clone()))
        .collect()
}

/// The images the next turn will need, built into the engine while the
/// files' quiet period still runs, so the turn finds them built or under
/// way. Nothing leaves this machine and nothing is printed until a turn
/// adopts it; dropped (by a later change), its build stops and its lines
/// are never shown. The tag cannot lie about a file changed meanwhile:
/// image-builder checks every file it sends against the planned digest.
pub struct Early {
    /// What the engine lacked when the build started.
    plans: Vec<Plan>,
    /// Their image references, which a turn's plans must name to adopt it.
    references: BTreeSet<String>,
    task: Option<JoinHandle<Result<Vec<BuildResult>, images::Error>>>,
    lines: Arc<Held>,
}

impl Early {
    /// Plans the project as it is on disk and starts building what the
    /// engine lacks; `None` when nothing is to be built, or the project
    /// cannot be planned (the turn itself then says why).
    pub async fn start(
        settings: &Settings,
        engine: &Engine,
        watched: &[String],
        state: &State,
    ) -> Option<Early> {
        let project = settings.load_project().ok()?;
        let plans = render::images::plans(&project, &frozen(state, watched), Some(engine.builder))
            .await
            .ok()?;
        let plans = lacking(engine, &plans).await;
        if plans.is_empty() {
            return None;
        }
        let lines = Arc::new(Held::default());
        let task = tokio::spawn({
            let (engine, plans, lines) = (engine.clone(), plans.clone(), lines.clone());
            async move { images::build(&engine, &plans, lines.as_ref()).await }
        });
        Some(Early {
            references: plans.iter().map(Plan::reference).collect(),
            plans,
            task: Some(task),
            lines,
        })
    }

    /// The build's outcome, its lines shown from now on.
    async fn finish(mut self, engine: &Engine) -> Result<Vec<BuildResult>, images::Error> {
        self.lines.release();
        let task = self.task.take().expect("an early build is finished once");
        match task.await {
            Ok(outcome) => outcome,
            // It panicked: build here, where the failure is reported.
            Err(_) => images::build(engine, &self.plans, &Lines).await,
        }
    }
}

impl Drop for Early {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Build lines held back until the build is adopted, then printed as they come.
struct Held(Mutex<Option<Vec<String>>>);

impl Default for Held {
    fn default() -> Self {
        Held(Mutex::new(Some(Vec::new())))
    }
}

impl Held {
    fn release(&self) {
        let mut held = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for line in held.take().unwrap_or_default() {
            eprintln!("{line}");
        }
    }
}

impl Progress for Held {
    fn event(&self, component: &str, event: build::Event) {
        let Some(line) = line(component, event) else {
            return;
        };
        match self.0.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            Some(held) => held.push(line),
            None => eprintln!("{line}"),
        }
    }
}

/// The plans whose image the engine does not have.
async fn lacking(engine: &Engine, plans: &[Plan]) -> Vec<Plan> {
    let built = futures::future::join_all(
        plans
            .iter()
            .map(|p| images::all_built(engine, std::slice::from_ref(p))),
    )
    .await;
    plans
        .iter()
        .zip(built)
        .filter(|(_, built)| !built)
        .map(|(p, _)| p.clone())
        .collect()
}

/// Build progress as status lines: what starts and what each component ends with.
struct Lines;

impl Progress for Lines {
    fn event(&self, component: &str, event: build::Event) {
        if let Some(line) = line(component, event) {
            eprintln!("{line}");
        }
    }
}

/// The status line of a build event; steps and their output are not shown.
fn line(component: &str, event: build::Event) -> Option<String> {
    match event {
        build::Event::Status(status) => Some(format!("{component}: {status}")),
        build::Event::Done(reference) => Some(format!("{component}: image {reference}")),
        build::Event::Step(_) | build::Event::Output(_) => None,
    }
}
