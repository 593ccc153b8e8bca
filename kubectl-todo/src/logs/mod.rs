//! `kubectl todo logs`: the logs of every pod of a component, merged, and
//! followed across restarts, rollouts and dropped connections.

mod error;
mod filter;
mod follow;
mod format;
mod output;
mod pods;
mod redaction;
mod since;
mod snapshot;
mod stream;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, LogParams};
use regex::Regex;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::apply::interrupt;
use crate::context::Connection;
use crate::format::{Format, offer};
use crate::labels;
use crate::project::Project;

pub use error::Error;
pub use since::Since;

use filter::Filter;
use format::Printer;
use stream::{Cursor, Sink};

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  kubectl todo logs                       every component's logs
  kubectl todo logs backend -f            follow the backend through restarts and rollouts
  kubectl todo logs --since 10m --grep 'ERROR|WARN' --exclude healthz
  kubectl todo logs frontend --tail 100 --timestamps
  kubectl todo logs backend --previous    the run before the last restart
  kubectl todo logs -o json | jq -r .message")]
pub struct Args {
    /// Components to show (default: every component of the project).
    #[arg(value_name = "COMPONENT")]
    pub components: Vec<String>,
    /// Keep streaming: attach to new pods, survive restarts, rollouts and dropped connections.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only lines newer than a duration (30s, 5m, 1h30m) or an RFC 3339 time.
    #[arg(long, value_name = "DURATION|TIME", value_parser = since::parse)]
    pub since: Option<Since>,
    /// Lines to show from the end of each container's log (-1: all).
    #[arg(long, value_name = "N", default_value_t = -1, allow_negative_numbers = true,
          value_parser = clap::value_parser!(i64).range(-1..))]
    pub tail: i64,
    /// Print each line's timestamp; without --follow, lines are merged in time order.
    #[arg(long)]
    pub timestamps: bool,
    /// The log of the run before each container's last restart.
    #[arg(short = 'p', long, conflicts_with = "follow")]
    pub previous: bool,
    /// Only this container of each pod (default: all of them).
    #[arg(short = 'c', long, value_name = "NAME")]
    pub container: Option<String>,
    /// Only lines matching a regular expression (repeat for any of several).
    #[arg(long, value_name = "REGEX", value_parser = filter::parse_regex)]
    pub grep: Vec<Regex>,
    /// Leave out lines matching a regular expression (repeatable).
    #[arg(long, value_name = "REGEX", value_parser = filter::parse_regex)]
    pub exclude: Vec<Regex>,
    /// Output format.
    #[arg(short = 'o', long, value_parser = offer(&[
        (Format::Text, Some("`component/pod/container message`")),
        (Format::Json, Some("One object per line: time, component, pod, container, message")),
    ]), default_value = "text")]
    pub output: Format,
}

/// What every stream of one invocation shares.
pub(crate) struct Shared {
    api: Api<Pod>,
    filter: Filter,
    sink: Sink,
    container: Option<String>,
    since: Option<Since>,
    tail: i64,
    colours: AtomicUsize,
}

impl Shared {
    /// One colour per pod, in the order pods are met.
    fn next_colour(&self) -> usize {
        self.colours.fetch_add(1, Ordering::Relaxed)
    }

    /// A container's cursor before its first line.
    fn cursor(&self) -> Cursor {
        match self.since {
            Some(Since::Time(t)) => Cursor::starting_at(t),
            _ => Cursor::default(),
        }
    }

    /// The request for a stream: from the cursor when resuming, else from the
    /// user's --since, with --tail only for pods that existed at the start.
    fn params(&self, follow: bool, cursor: &Cursor, initial: bool) -> LogParams {
        let mut params = LogParams {
            follow,
            ..LogParams::default()
        };
        if cursor.has_read() {
            params.since_time = cursor.since_time();
            return params;
        }
        match self.since {
            Some(Since::Seconds(s)) => params.since_seconds = Some(s),
            Some(Since::Time(_)) => params.since_time = cursor.since_time(),
            None => {}
        }
        if initial && self.tail >= 0 {
            params.tail_lines = Some(self.tail);
        }
        params
    }
}

/// Shows the logs `args` asks for, of the project's pods in the connection's namespace.
pub async fn run(
    project: &Project,
    connection: Connection,
    args: Args,
) -> anyhow::Result<ExitCode> {
    let components = select(project, &args.components)?;
    let namespace = connection.namespace.clone();
    let (redact, read) = redaction::initial(project, &connection).await;
    let redact = Arc::new(redact);
    let api: Api<Pod> = Api::namespaced(connection.client.clone(), &namespace);

    let mut found = Vec::new();
    for component in components {
        let selector = labels::component_selector(&project.name, &component);
        let pods = api
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|source| Error::List {
                component: component.clone(),
                namespace: namespace.clone(),
                source,
            })?;
        found.push((component, selector, pods.items));
    }
    check_container(args.container.as_deref(), &found)?;
    let empty: Vec<String> = found
        .iter()
        .filter(|(_, _, pods)| pods.is_empty())
        .map(|(c, _, _)| c.clone())
        .collect();
    if !args.follow && empty.len() == found.len() {
        return Err(Error::NoPods {
            components: empty,
            namespace,
            context: connection.context,
        }
        .into());
    }
    for component in &empty {
        let waiting = if args.follow {
            "; waiting for them"
        } else {
            ""
        };
        eprintln!("note: component {component} has no pods in namespace {namespace} yet{waiting}");
    }

    let (sink, lines) = mpsc::channel(256);
    let shared = Arc::new(Shared {
        api,
        filter: Filter::new(&args.grep, &args.exclude, redact.clone()),
        sink,
        container: args.container.clone(),
        since: args.since,
        tail: args.tail,
        colours: AtomicUsize::new(0),
    });
    let printer = Printer {
        format: args.output,
        timestamps: args.timestamps,
        colour: image_builder::term::styled(image_builder::term::Stream::Stdout),
    };
    let mut readers = JoinSet::new();
    if args.follow {
        let (project, sink) = (project.clone(), shared.sink.clone());
        readers.spawn(async move {
            let ending = || sink.is_closed();
            redaction::follow(project, connection, redact, read, ending).await;
            Vec::new()
        });
        for (component, selector, _) in found {
            let shared = shared.clone();
            readers.spawn(async move {
                follow::component(shared, component, selector).await;
                Vec::new()
            });
        }
    } else {
        let found = found.into_iter().map(|(c, _, pods)| (c, pods)).collect();
        readers.spawn(snapshot::read_all(shared.clone(), found, args.previous));
    }
    drop(shared);
    let by_time = args.timestamps && !args.follow;
    let caught = std::sync::OnceLock::new();
    let stop = async {
        let _ = caught.set(interrupt::signalled().await);
    };
    let ending = output::print(lines, printer, by_time, stop).await?;
    if args.follow || ending == output::Ending::Stopped {
        // Readers end before the runtime drops their connections, so that none reports the drop.
        readers.shutdown().await;
        // Ctrl-C is how a reader ends `-f`: a success. SIGTERM and SIGHUP
        // come from elsewhere (`timeout`, a closed terminal) and say so.
        return Ok(match caught.get() {
            Some(signal) if *signal != interrupt::Signal::Interrupt => signal.exit().into(),
            _ => ExitCode::SUCCESS,
        });
    }
    let failed: Vec<String> = match readers.join_next().await {
        Some(Ok(failed)) => failed,
        _ => Vec::new(),
    };
    if failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(Error::Unreadable { failed, namespace }.into())
    }
}

/// The components asked for, or all of them; unknown names are an error that lists the known ones.
fn select(project: &Project, asked: &[String]) -> Result<Vec<String>, Error> {
    let known: Vec<String> = project
        .component_names()
        .into_iter()
        .map(String::from)
        .collect();
    if asked.is_empty() {
        return Ok(known);
    }
    let mut selected = Vec::new();
    for name in asked {
        if !known.contains(name) {
            return Err(Error::UnknownComponent {
                name: name.clone(),
                known,
            });
        }
        if !selected.contains(name) {
            selected.push(name.clone());
        }
    }
    Ok(selected)
}

/// `-c NAME` must name a container of at least one pod found.
fn check_container(
    container: Option<&str>,
    found: &[(String, String, Vec<Pod>)],
) -> Result<(), Error> {
    let Some(container) = container else {
        return Ok(());
    };
    let mut known: Vec<String> = Vec::new();
    for (_, _, pods) in found {
        for pod in pods {
            for name in pods::containers(pod) {
                if name == container {
                    return Ok(());
                }
                if !known.iter().any(|k| k == name) {
                    known.push(name.to_string());
                }
            }
        }
    }
    if known.is_empty() {
        return Ok(());
    }
    Err(Error::UnknownContainer {
        name: container.to_string(),
        known,
    })
}
