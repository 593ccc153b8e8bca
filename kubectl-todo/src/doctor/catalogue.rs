//! Every check and diagnosis `doctor` can report, with its stable id. This
//! list is the single source of `docs/troubleshooting.md` ([`markdown`]), so
//! the guide cannot drift from what the code says.

use std::fmt::Write as _;

use super::output::Group;

/// One entry of the guide. `fix` is the general remedy; a finding's hint
/// gives the exact command for the case at hand.
#[derive(Debug, PartialEq, Eq)]
pub struct Entry {
    pub id: &'static str,
    pub group: Group,
    pub title: &'static str,
    pub cause: &'static str,
    pub fix: &'static str,
}

macro_rules! entries {
    ($($name:ident = $id:literal, $group:ident, $title:literal, $cause:literal, $fix:literal;)*) => {
        $(pub const $name: Entry = Entry {
            id: $id,
            group: Group::$group,
            title: $title,
            cause: $cause,
            fix: $fix,
        };)*
        /// In the order of the guide.
        pub const ALL: &[&Entry] = &[$(&$name),*];
    };
}

entries! {
    KUBECTL = "env.kubectl", Environment, "kubectl is installed",
        "kubectl is not on PATH. `kubectl todo` is a kubectl plugin, and the fixes doctor prints are kubectl commands.",
        "Install kubectl (https://kubernetes.io/docs/tasks/tools/) and check `kubectl version --client`.";
    DOCKER_CLI = "env.docker-cli", Environment, "the docker CLI is installed",
        "The docker command is not on PATH. kubectl-todo talks to the Docker Engine through its API, so this is only a warning, but the guide's commands use the CLI.",
        "Install the Docker CLI (https://docs.docker.com/engine/install/) and check `docker --version`.";
    CLUSTER_TOOL = "env.cluster-tool", Environment, "the local cluster's tool is installed",
        "The current context belongs to minikube, kind or k3d, but that tool is not on PATH, so images cannot be loaded into the node and the cluster cannot be started.",
        "Install the tool the context needs (https://minikube.sigs.k8s.io/docs/start/, https://kind.sigs.k8s.io/, https://k3d.io/) or switch context with `kubectl config use-context NAME`.";
    HELM = "env.helm", Environment, "helm (optional)",
        "helm is not needed by kubectl-todo; doctor only reports its version when it is installed.",
        "Nothing to do; install helm only if other tools need it.";
    DOCKER_ENGINE = "env.docker-engine", Environment, "the Docker Engine is reachable",
        "Images are built and inspected through the Docker Engine API. The socket is missing (the engine is not running or DOCKER_HOST points elsewhere) or the user may not open it.",
        "Start the engine (`sudo systemctl start docker`, or Docker Desktop); for `permission denied`, `sudo usermod -aG docker $USER` and log in again; check with `docker info`.";
    DOCKER_DISK = "env.docker-disk", Environment, "free space under the Docker data root",
        "Builds fail in odd ways when the disk holding the engine's data root is nearly full (warning under 10 GiB, failure under 2 GiB).",
        "Free space with `docker system prune` (add `--all` to remove unused images too) and check `docker system df`.";
    VERSION_SKEW = "env.version-skew", Environment, "kubectl and the API server are compatible",
        "kubectl supports API servers one minor version older or newer than itself; further apart, commands can fail or misbehave.",
        "Install a kubectl within one minor version of the server (`kubectl version` shows both).";
    KUBECONFIG = "cluster.kubeconfig", Cluster, "the kubeconfig loads",
        "No kubeconfig was found (--kubeconfig, $KUBECONFIG, ~/.kube/config), it does not parse, or its context is missing.",
        "Start a local cluster (`minikube start` writes the kubeconfig) or point --kubeconfig at one; list contexts with `kubectl config get-contexts`.";
    CONTEXT = "cluster.context", Cluster, "the current context looks local",
        "The context does not look like minikube, kind, k3d or Docker Desktop, so `up` and `secrets` would change a shared or remote cluster.",
        "Switch to the local cluster with `kubectl config use-context minikube` (or pass --context) if that was not intended.";
    API = "cluster.api", Cluster, "the API server answers",
        "The API server did not answer: the cluster is stopped, the address in the kubeconfig is stale, or the network is in the way.",
        "Start the cluster (`minikube start`, `docker start <kind-node>`, `k3d cluster start`) and check `kubectl cluster-info`.";
    CREDENTIALS = "cluster.credentials", Cluster, "the credentials are accepted",
        "The API server rejected the kubeconfig's credentials (401 Unauthorized): a token or certificate expired or was revoked.",
        "Refresh the credentials (`minikube update-context`, or your provider's login, e.g. `aws eks update-kubeconfig`), then check `kubectl get nodes`.";
    NODES = "cluster.nodes", Cluster, "the nodes are Ready",
        "A node that is not Ready runs no new pods.",
        "Look at the node's conditions with `kubectl describe node NAME`; for minikube, `minikube stop && minikube start`.";
    CAPACITY = "cluster.capacity", Cluster, "the nodes can hold the app's requests",
        "The app's CPU or memory requests exceed what a node can allocate, so its pods stay Pending.",
        "Lower `resources.requests` in todo.yaml, or give the node more (`minikube delete && minikube start --cpus 4 --memory 8g`).";
    RBAC = "cluster.rbac", Cluster, "you may do what up, secrets and logs do",
        "A SelfSubjectAccessReview said no for a verb and resource that `up`, `secrets` or `logs` need.",
        "Ask the cluster's administrator for a Role in the namespace granting them; check one with `kubectl auth can-i VERB RESOURCE -n NAMESPACE`.";
    UNCHECKED = "app.unchecked", App, "the app could be checked",
        "The app checks need the API server, which could not be used (see the cluster lines).",
        "Fix the cluster problems above, then run `kubectl todo doctor` again.";
    NAMESPACE = "app.namespace", App, "the namespace exists",
        "The app's namespace does not exist yet: the app was never deployed to this cluster, or it was deleted.",
        "Deploy the app with `kubectl todo up` (it creates the namespace).";
    SECRET = "app.secret", App, "the Secret holds every required key",
        "The app's Secret is missing, or a required key is absent or empty; pods that read it fail with CreateContainerConfigError.",
        "Create the Secret with `kubectl todo secrets create`, or set one key with `kubectl todo secrets set KEY`.";
    IMAGE_PLAN = "app.image-plan", App, "image-builder accepts the component's sources",
        "image-builder refuses what the sources say before anything is built, as `up` would: a Dockerfile whose final stage runs as root, a file the Dockerfile copies that is not there, no recognisable stack, a malformed `.dockerignore`.",
        "Make the change the finding names (for a root Dockerfile: `USER 1001:1001` as its last instruction, or `stack:` in todo.yaml to build the generated recipe); `kubectl todo plan COMPONENT` shows the plan once it is accepted.";
    IMAGE_LOCAL = "app.image-local", App, "the current image is built",
        "The image tagged with the content hash of the component's current sources is not in the local Docker Engine: the sources changed since the last build, or it was never built.",
        "Build it with `kubectl todo up` (or `image-builder build DIR`).";
    IMAGE_NODE = "app.image-node", App, "the current image is on the node",
        "The node does not list the current content-hash image in `status.images`, so a pod using it cannot start (the node cannot pull local images).",
        "Load it with `kubectl todo up`, or `minikube image load IMAGE` (`kind load docker-image IMAGE`, `k3d image import IMAGE`).";
    IMAGE_OUTDATED = "app.image-outdated", App, "the deployed image matches the sources",
        "The Deployment runs an image built from older sources than the ones on disk.",
        "Deploy the current sources with `kubectl todo up`.";
    DEPLOYMENT = "app.deployment", App, "the Deployment is available",
        "The component has no Deployment, or fewer available replicas than wanted; the pod lines say why.",
        "Deploy with `kubectl todo up`; for an existing Deployment fix the pod problem reported below it.";
    PODS = "app.pods", App, "the pods are running and ready",
        "A pod is still starting, or in a state no more specific diagnosis covers.",
        "Watch it with `kubectl get pods -n NAMESPACE -w` and read `kubectl describe pod NAME -n NAMESPACE`.";
    IMAGE_NOT_LOADED = "pod.image-not-loaded", App, "ErrImagePull / ImagePullBackOff / ErrImageNeverPull: image not on the node",
        "The pod's image is not on the node and the node cannot pull it (a locally built image exists only in your Docker Engine until it is loaded).",
        "Load it into the node: `minikube image load IMAGE`, `kind load docker-image IMAGE`, `k3d image import IMAGE`, or run `kubectl todo up`.";
    IMAGE_TAG_MISMATCH = "pod.image-tag-mismatch", App, "ErrImagePull: the node has the image under another tag",
        "The node holds the repository, but not the tag the pod asks for: the Deployment points at a tag that was never loaded.",
        "Run `kubectl todo up`, which builds, loads and deploys the same content-hash tag.";
    IMAGE_PULL_ALWAYS = "pod.image-pull-always", App, "ErrImagePull: imagePullPolicy Always on a local image",
        "With `imagePullPolicy: Always` the node pulls from a registry on every start, which fails for an image that exists only locally.",
        "Set `imagePullPolicy: IfNotPresent` (what `kubectl todo up` renders) with the `kubectl patch` command doctor prints.";
    CRASH_LOOP = "pod.crash-loop", App, "CrashLoopBackOff: the container keeps exiting",
        "The container exits with an error and the kubelet restarts it with growing back-off. The exit code and the last lines of the previous run's log say why.",
        "Read the previous run's log with `kubectl todo logs COMPONENT --previous`, fix the cause (often configuration or an unreachable database), then `kubectl todo up`.";
    INVALID_IMAGE_NAME = "pod.invalid-image-name", App, "InvalidImageName: the image reference is not valid",
        "The Deployment names an image reference the kubelet cannot parse: an upper-case letter, a space, or a character a tag may not hold.",
        "Deploy a valid reference: run `kubectl todo up`, which renders the content-hash tag it built, or pass a lower-case `--image COMPONENT=REPOSITORY:TAG`.";
    CONTAINER_ERROR = "pod.container-error", App, "CreateContainerError / RunContainerError: the container cannot be created or started",
        "The container runtime refused the container: the image's command or entrypoint does not exist in it, or a mount or device cannot be set up.",
        "Read the runtime's message with `kubectl describe pod NAME -n NAMESPACE`, fix the image's command or entrypoint, then run `kubectl todo up`.";
    OOM_KILLED = "pod.oom-killed", App, "OOMKilled: the container exceeded its memory limit",
        "The container used more memory than `resources.limits.memory` and the kernel killed it.",
        "Raise `resources.limits.memory` of the component in todo.yaml and run `kubectl todo up` (or `kubectl set resources deployment NAME --limits=memory=…` for a quick try).";
    CONFIG_MISSING = "pod.config-missing", App, "CreateContainerConfigError: a Secret, ConfigMap or key is missing",
        "The container reads an environment variable from a Secret or ConfigMap (or one of its keys) that does not exist.",
        "For the app's Secret: `kubectl todo secrets create` or `kubectl todo secrets set KEY`; for a ConfigMap: `kubectl todo up`.";
    RUN_AS_ROOT = "pod.run-as-root", App, "CreateContainerConfigError: runAsNonRoot and an image that runs as root",
        "The pod requires a non-root user (`runAsNonRoot: true`) but the image's user is root (or not numeric) and the pod sets no runAsUser.",
        "Rebuild the image with a numeric non-root `USER 1001:1001` (images from `kubectl todo up` have it), or set `securityContext.runAsUser: 1001` with the `kubectl patch` command doctor prints.";
    UNSCHEDULABLE = "pod.unschedulable", App, "Pending / FailedScheduling: not enough CPU or memory",
        "No node has enough unrequested CPU or memory for the pod's requests.",
        "Lower `resources.requests` of the component in todo.yaml and run `kubectl todo up`, or give the node more (`minikube delete && minikube start --cpus 4 --memory 8g`).";
    PROBE_FAILING = "pod.probe-failing", App, "Unhealthy: a readiness or liveness probe fails",
        "The kubelet's HTTP probe gets an error or no answer on the probe's path and port: the app listens elsewhere, serves another path, or is not up yet.",
        "Make the app answer 200 on the probe's path and port, or fix `healthPath`, `readyPath` or `port` in todo.yaml and run `kubectl todo up`; the app's own log is `kubectl todo logs COMPONENT`.";
    SERVICE = "app.service", App, "the Service has endpoints",
        "The Service has no ready endpoints because its pods are not ready (see the pod lines).",
        "Fix the pods; check with `kubectl get endpoints NAME -n NAMESPACE`.";
    SELECTOR_MISMATCH = "service.selector-mismatch", App, "a Service whose selector matches no pod",
        "The Service's selector matches none of the component's pods, so it has no endpoints and every request to it fails.",
        "Set the selector to the Deployment's pod labels with the `kubectl patch` command doctor prints, or re-apply with `kubectl todo up`.";
    PORT_MISMATCH = "service.port-mismatch", App, "a Service whose targetPort no container declares",
        "The Service sends traffic to a port the pods do not listen on.",
        "Point the Service's targetPort at the container's port with the `kubectl patch` command doctor prints, or re-apply with `kubectl todo up`.";
    NODEPORT = "app.nodeport", App, "the NodePort answers from this machine",
        "Nothing answered on the node's address and the Service's NodePort. With minikube's docker driver on macOS or Windows, the node's address is not reachable from the host.",
        "Use `minikube service NAME -n NAMESPACE --url` (it opens a tunnel), or check the node's firewall.";
}

pub fn find(id: &str) -> Option<&'static Entry> {
    ALL.iter().copied().find(|e| e.id == id)
}

/// The text of `docs/troubleshooting.md`.
pub fn markdown() -> String {
    let mut out = String::from(
        "# Troubleshooting\n\n\
         <!-- Generated from kubectl-todo/src/doctor/catalogue.rs; do not edit.\n     \
         Regenerate: UPDATE_DOCS=1 cargo test -p kubectl-todo --test offline doctor_docs:: -->\n\n\
         `kubectl todo doctor` checks the environment, the cluster and the app, and\n\
         prints one line per check: ✓ healthy, ⚠ warning, ✗ failed, ? could not run\n\
         (a 403 or a timeout: never counted as healthy). Each line ends with the id\n\
         of its section below, and a failure comes with the exact command that fixes it,\n\
         with the `--project`, `--kubeconfig`, `--context` and `-n` doctor ran with\n\
         (every error's `hint:` line does the same), so that it works when pasted.\n\n\
         ```sh\n\
         kubectl todo doctor                     # everything\n\
         kubectl todo doctor --only app --component backend\n\
         kubectl todo doctor -o json             # {\"checks\": [{\"id\", \"group\", \"status\", \"message\", \"hint\", \"component\"}], \"summary\": {…}}\n\
         kubectl todo doctor --strict            # warnings fail too\n\
         ```\n\n\
         Exit status: 0 when nothing failed, 1 when a check failed or could not run\n\
         (with `--strict`, warnings too), 2 when doctor itself could not run.\n",
    );
    for group in [Group::Environment, Group::Cluster, Group::App] {
        let _ = write!(out, "\n## {}\n", group.title());
        for e in ALL.iter().filter(|e| e.group == group) {
            let _ = write!(
                out,
                "\n### `{}`: {}\n\n**Cause.** {}\n\n**Fix.** {}\n",
                e.id, e.title, e.cause, e.fix
            );
        }
    }
    out
}
