use std::fmt::Write as _;

/// What can go wrong before or while reading logs, each with the way out.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unknown component `{name}`; the project's components are: {}", known.join(", "))]
    UnknownComponent { name: String, known: Vec<String> },
    #[error("cannot list the pods of component {component} in namespace {namespace}")]
    List {
        component: String,
        namespace: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "no pods of {} in namespace {namespace} (context {context:?})",
        plural("component", components)
    )]
    NoPods {
        components: Vec<String>,
        namespace: String,
        context: String,
    },
    #[error("no pod has a container named `{name}`; the pods' containers are: {}", known.join(", "))]
    UnknownContainer { name: String, known: Vec<String> },
    #[error("{}", unreadable(failed))]
    Unreadable {
        failed: Vec<String>,
        namespace: String,
    },
}

fn plural(what: &str, names: &[String]) -> String {
    match names {
        [one] => format!("{what} {one}"),
        many => format!("{what}s {}", many.join(", ")),
    }
}

fn unreadable(failed: &[String]) -> String {
    let mut out = match failed.len() {
        1 => "cannot read the log of 1 container:".to_string(),
        n => format!("cannot read the logs of {n} containers:"),
    };
    for f in failed {
        let _ = write!(out, "\n  {f}");
    }
    out
}

impl crate::report::Hinted for Error {
    fn hint(&self) -> Option<String> {
        Some(match self {
            Error::UnknownComponent { name, known } => {
                let closest = known
                    .iter()
                    .map(|k| (strsim::jaro_winkler(name, k), k))
                    .filter(|(score, _)| *score >= 0.8)
                    .max_by(|a, b| a.0.total_cmp(&b.0));
                match closest {
                    Some((_, k)) => format!("did you mean `kubectl todo logs {k}`?"),
                    None => "name one of the components above, or none for all of them (they come from todo.yaml)".into(),
                }
            }
            Error::List { namespace, .. } => {
                format!("check that the cluster answers: `kubectl get pods -n {namespace}`")
            }
            Error::NoPods { namespace, .. } => format!(
                "deploy with `kubectl todo up`, add -f to wait for the pods, or look elsewhere with -n/--context (`kubectl get pods -n {namespace}`)"
            ),
            Error::UnknownContainer { .. } => {
                "name one of those containers with -c, or leave -c out to see all of them".into()
            }
            Error::Unreadable { namespace, .. } => format!(
                "`kubectl describe pod POD -n {namespace}` says why a container has no log; --previous shows the run before a restart"
            ),
        })
    }
}
crate::report::hinted!(Error);
