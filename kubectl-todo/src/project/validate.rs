//! What a resolved project must satisfy before anything is built or
//! written: files stay inside the repository, nothing collides once
//! rendered, and no number asks for more than the tools will ever handle.
//! A `todo.yaml` comes with cloned repositories, so it is read as hostile.

use std::collections::BTreeMap;
use std::path::{Component as PathPart, Path, PathBuf};

use serde_saphyr::{Location, Spanned};

use super::file::ProjectFile;
use super::{Component, Project};

/// `todo.yaml` above this size is refused before it is read.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;
/// `generateBytes` above this is refused: the Secret itself holds at most 1 MiB.
pub const MAX_GENERATE_BYTES: usize = 1024 * 1024;
/// Object names are `<project>-<component>` and must stay DNS labels.
pub const MAX_OBJECT_NAME: usize = 63;
/// The longest project name that leaves room for `-` and a one-letter component.
pub const MAX_PROJECT_NAME: usize = MAX_OBJECT_NAME - 2;

/// Where each part of the file was written, kept before resolving consumes it.
pub(super) struct Spans {
    project: Location,
    components: BTreeMap<String, Location>,
    keys: BTreeMap<String, Location>,
}

impl Spans {
    pub(super) fn of(f: &ProjectFile) -> Spans {
        Spans {
            project: f.name.referenced,
            components: f
                .components
                .iter()
                .flat_map(|list| &list.value)
                .map(|c| (c.name.value.clone(), c.name.referenced))
                .collect(),
            keys: f
                .secret
                .keys
                .iter()
                .map(|k| (k.name.value.clone(), k.name.referenced))
                .collect(),
        }
    }

    fn component(&self, name: &str) -> Location {
        self.components.get(name).copied().unwrap_or(self.project)
    }
}

/// A refusal: where (when the project has a file) and why.
#[derive(Debug)]
pub(super) struct Refusal {
    pub at: Location,
    pub message: String,
}

/// The project name's length, checked before component names are measured
/// against what it leaves of an object name.
pub(super) fn project_name(name: &str, at: Location) -> Result<(), Refusal> {
    if name.len() <= MAX_PROJECT_NAME {
        return Ok(());
    }
    Err(Refusal {
        at,
        message: format!(
            "the project name `{name}` is {} characters long; object names are `<project>-<component>` and at most {MAX_OBJECT_NAME} characters, so the project name may have at most {MAX_PROJECT_NAME}",
            name.len()
        ),
    })
}

/// Checks `project`.
pub(super) fn project(project: &mut Project, spans: Option<&Spans>) -> Result<(), Refusal> {
    let at_project = spans.map_or(Location::UNKNOWN, |s| s.project);
    let at = |component: &str| spans.map_or(Location::UNKNOWN, |s| s.component(component));
    let refuse = |at: Location, message: String| Err(Refusal { at, message });
    let repository = repository_of(&project.root);
    let mut node_ports: BTreeMap<u16, &str> = BTreeMap::new();
    for c in &mut project.components {
        let here = at(&c.name);
        if let Err(why) = confined(&repository, &project.root, &c.path) {
            return refuse(
                here,
                format!(
                    "the path `{}` of component `{}` {why}; a component's files must be inside the repository ({})",
                    c.path.display(),
                    c.name,
                    repository.display()
                ),
            );
        }
        if let Some(dockerfile) = &c.build.dockerfile {
            let base = project.root.join(&c.path);
            if let Err(why) = confined(&repository, &base, dockerfile) {
                return refuse(
                    here,
                    format!(
                        "the dockerfile `{}` of component `{}` {why}; it may be anywhere inside the repository ({}), as a path relative to the component",
                        dockerfile.display(),
                        c.name,
                        repository.display()
                    ),
                );
            }
        }
        if let Some(port) = c.service.node_port
            && let Some(other) = node_ports.insert(port, &c.name)
        {
            return refuse(
                here,
                format!(
                    "`nodePort` {port} of component `{}` is already the node port of component `{other}`: give each its own",
                    c.name
                ),
            );
        }
        for (key, path) in [("healthPath", &c.health_path), ("readyPath", &c.ready_path)] {
            let Some(path) = path else { continue };
            if let Some(bad) = path
                .chars()
                .find(|ch| ch.is_whitespace() || ch.is_control())
            {
                return refuse(
                    here,
                    format!(
                        "`{key}` {path:?} of component `{}` holds {bad:?}: a probe path has no whitespace or control characters (percent-encode them, e.g. `%20`)",
                        c.name
                    ),
                );
            }
        }
        requests_within_limits(c).map_err(|message| Refusal { at: here, message })?;
        for (key, image) in [
            ("baseImages.builder", &c.build.builder_image),
            ("baseImages.runtime", &c.build.runtime_image),
        ] {
            if let Some(image) = image
                && let Err(why) = image_builder::reference::check(image)
            {
                return refuse(
                    here,
                    format!("`{key}` `{image}` of component `{}` {why}", c.name),
                );
            }
        }
    }
    for key in &project.secret.keys {
        let here = spans
            .and_then(|s| s.keys.get(&key.name).copied())
            .unwrap_or(at_project);
        match key.generate_bytes {
            Some(0) => {
                return refuse(
                    here,
                    format!(
                        "`generateBytes` of secret key `{}` must be at least 1",
                        key.name
                    ),
                );
            }
            Some(n) if n > MAX_GENERATE_BYTES => {
                return refuse(
                    here,
                    format!(
                        "`generateBytes` {n} of secret key `{}` is above the limit of {MAX_GENERATE_BYTES} (1 MiB, the most a Secret holds); 32 is plenty for a key",
                        key.name
                    ),
                );
            }
            _ => {}
        }
        if let Some(pattern) = &key.pattern
            && let Err(e) = regex::Regex::new(&format!("^(?:{pattern})$"))
        {
            let why = e.to_string();
            let why = why.lines().last().unwrap_or_default().trim();
            return refuse(
                here,
                format!(
                    "`pattern` of secret key `{}` is not a valid regular expression ({why}): `{pattern}`",
                    key.name
                ),
            );
        }
    }
    Ok(())
}

/// The git work tree holding `root`, or `root` itself outside git.
fn repository_of(root: &Path) -> PathBuf {
    let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    root.ancestors()
        .find(|dir| dir.join(".git").exists())
        .unwrap_or(&root)
        .to_path_buf()
}

/// `Ok` when `path`, after symlinks, is inside `repository`; else why not.
/// A path that does not exist yet is judged by its longest existing part.
fn confined(repository: &Path, base: &Path, written: &Path) -> Result<(), String> {
    let mut existing = base.join(written);
    let real = loop {
        if let Ok(real) = std::fs::canonicalize(&existing) {
            break real;
        }
        if existing.components().next_back() == Some(PathPart::ParentDir) {
            return Err("holds `..` after a directory that does not exist".into());
        }
        if !existing.pop() {
            return Err("cannot be resolved".into());
        }
    };
    if real.starts_with(repository) {
        return Ok(());
    }
    let how = if written.is_absolute() {
        "is outside the repository"
    } else if written.components().any(|p| p == PathPart::ParentDir) {
        "leads outside the repository through `..`"
    } else {
        "leads outside the repository through a symbolic link"
    };
    Err(format!("{how} (to {})", real.display()))
}

/// The paths `always` writable, then each path `written` with `//`, `.`
/// and a final `/` removed. `/`, `..` and relative paths are refused, and
/// so are two spellings of one directory (`/var/x` and `/var/x/`): one of
/// them is likely a typo of another directory. A path among `always` may be
/// written again.
pub(super) fn writable_paths(
    always: Vec<String>,
    written: &[Spanned<String>],
) -> Result<Vec<String>, Refusal> {
    let mut out = always;
    let mut seen: Vec<(String, &Spanned<String>)> = Vec::new();
    for p in written {
        let refuse = |message: String| Refusal {
            at: p.referenced,
            message,
        };
        let normal = normal_path(&p.value).map_err(refuse)?;
        if let Some((_, first)) = seen.iter().find(|(n, _)| *n == normal) {
            return Err(refuse(format!(
                "writable paths `{}` (line {}, column {}) and `{}` are both `{normal}`: keep one of the two",
                first.value,
                first.referenced.line(),
                first.referenced.column(),
                p.value
            )));
        }
        if !out.contains(&normal) {
            out.push(normal.clone());
        }
        seen.push((normal, p));
    }
    Ok(out)
}

/// `p` with `//`, `.` and a final `/` removed; why not when it is relative,
/// the root directory or holds `..`.
fn normal_path(p: &str) -> Result<String, String> {
    if !p.starts_with('/') {
        return Err(format!("writable path `{p}` must be absolute"));
    }
    let mut parts = Vec::new();
    for part in p.split('/').filter(|s| !s.is_empty() && *s != ".") {
        if part == ".." {
            return Err(format!(
                "writable path `{p}` holds `..`: write the directory itself"
            ));
        }
        parts.push(part);
    }
    if parts.is_empty() {
        return Err(format!(
            "writable path `{p}` is the root directory: name the directories the app writes to (the root filesystem stays read-only)"
        ));
    }
    Ok(format!("/{}", parts.join("/")))
}

fn requests_within_limits(c: &Component) -> Result<(), String> {
    let (r, l) = (&c.resources.requests, &c.resources.limits);
    // One reading of quantities: the one doctor compares usage with.
    use crate::doctor::quantity::parse;
    for (what, request, limit) in [("cpu", &r.cpu, &l.cpu), ("memory", &r.memory, &l.memory)] {
        if let (Some(a), Some(b)) = (parse(request), parse(limit))
            && a > b
        {
            return Err(format!(
                "the {what} request {request} of component `{}` is above its limit {limit}: Kubernetes refuses such a pod; lower the request or raise the limit",
                c.name
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{Error, FILE_NAME};
    use super::*;

    /// A repository (`.git`) holding the project in `app/`.
    fn repo(todo: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".git")).unwrap();
        std::fs::create_dir_all(dir.path().join("app/web")).unwrap();
        std::fs::write(dir.path().join("app").join(FILE_NAME), todo).unwrap();
        dir
    }

    fn load(dir: &tempfile::TempDir) -> Result<Project, Error> {
        Project::load(&dir.path().join("app"))
    }

    fn refused(todo: &str) -> String {
        load(&repo(todo)).unwrap_err().to_string()
    }

    fn web(extra: &str) -> String {
        format!("name: shop\ncomponents:\n  - name: web\n    port: 3000\n{extra}")
    }

    #[test]
    fn component_paths_outside_the_repository_are_refused_with_why() {
        let err = refused(&web("    path: ../..\n"));
        assert!(err.contains("todo.yaml:3:11: the path `../..` of component `web` leads outside the repository through `..`"), "{err}");
        let err = refused(&web("    path: /etc\n"));
        assert!(
            err.contains("the path `/etc` of component `web` is outside the repository (to /etc)"),
            "{err}"
        );
        let err = refused(&web("    path: ../../nowhere/../x\n"));
        assert!(
            err.contains("holds `..` after a directory that does not exist"),
            "{err}"
        );
    }

    #[test]
    fn a_symbolic_link_out_of_the_repository_is_refused() {
        let outside = tempfile::tempdir().unwrap();
        let dir = repo(&web("    path: linked\n"));
        std::os::unix::fs::symlink(outside.path(), dir.path().join("app/linked")).unwrap();
        let err = load(&dir).unwrap_err().to_string();
        assert!(
            err.contains("leads outside the repository through a symbolic link"),
            "{err}"
        );
        // Without a file, the default layout's directories are checked too.
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("frontend")).unwrap();
        let err = Project::load(dir.path()).unwrap_err();
        assert!(matches!(err, Error::Refused { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("the path `frontend` of component `frontend` leads outside"),
            "{err}"
        );
    }

    #[test]
    fn dockerfiles_may_be_anywhere_in_the_repository_but_not_outside() {
        // The compose pattern: one directory of Dockerfiles beside the app.
        let ok = repo(&web("    dockerfile: ../../docker/web.Dockerfile\n"));
        std::fs::create_dir_all(ok.path().join("docker")).unwrap();
        std::fs::write(ok.path().join("docker/web.Dockerfile"), "FROM scratch\n").unwrap();
        load(&ok).unwrap();
        let err = refused(&web("    dockerfile: ../../../home/.ssh/id_rsa\n"));
        assert!(
            err.contains("the dockerfile `../../../home/.ssh/id_rsa` of component `web` "),
            "{err}"
        );
        let err = refused(&web("    dockerfile: /root/.ssh/id_rsa\n"));
        assert!(err.contains("is outside the repository"), "{err}");
    }

    #[test]
    fn outside_git_the_project_root_is_the_boundary() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("app")).unwrap();
        std::fs::create_dir_all(dir.path().join("other")).unwrap();
        std::fs::write(
            dir.path().join("app").join(FILE_NAME),
            web("    path: ../other\n"),
        )
        .unwrap();
        let err = Project::load(&dir.path().join("app"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("leads outside the repository through `..`"),
            "{err}"
        );
    }

    #[test]
    fn two_components_on_one_node_port_are_refused() {
        let err = refused(
            "name: shop\ncomponents:\n  - name: web\n    port: 80\n    service: {type: NodePort, nodePort: 30001}\n  - name: api\n    port: 80\n    service: {type: NodePort, nodePort: 30001}\n",
        );
        assert!(err.contains("todo.yaml:6:11: `nodePort` 30001 of component `api` is already the node port of component `web`"), "{err}");
    }

    #[test]
    fn generate_bytes_is_bounded_at_load() {
        let key = |n: &str| {
            format!(
                "{}secret:\n  keys:\n    - name: K\n      generateBytes: {n}\n",
                web("")
            )
        };
        let err = refused(&key("4000000000"));
        assert!(
            err.contains(
                "`generateBytes` 4000000000 of secret key `K` is above the limit of 1048576"
            ),
            "{err}"
        );
        assert!(refused(&key("0")).contains("must be at least 1"));
        load(&repo(&key("1048576"))).unwrap();
    }

    #[test]
    fn long_project_names_name_the_project_and_the_limit() {
        for n in [62, 63, 64] {
            let name = "a".repeat(n);
            let err = refused(&format!(
                "name: {name}\ncomponents:\n  - name: w\n    port: 80\n"
            ));
            assert!(
                err.contains(&format!(
                    "todo.yaml:1:7: the project name `{name}` is {n} characters long"
                )),
                "{err}"
            );
            assert!(
                err.contains("so the project name may have at most 61"),
                "{err}"
            );
        }
        let name = "a".repeat(61);
        let p = load(&repo(&format!(
            "name: {name}\ncomponents:\n  - name: w\n    port: 80\n"
        )))
        .unwrap();
        assert_eq!(format!("{}-{}", p.name, p.components[0].name).len(), 63);
    }

    #[test]
    fn writable_paths_are_normalised_at_load() {
        let p = load(&repo(&web("    writablePaths: [/var//x/, /tmp/]\n"))).unwrap();
        assert_eq!(p.components[0].writable_paths, ["/tmp", "/var/x"]);
        for second in ["/var//x", "/var/x/", "/./var/x"] {
            let err = refused(&web(&format!("    writablePaths: [/var/x, {second}]\n")));
            assert!(
                err.contains(&format!(
                    "todo.yaml:5:29: writable paths `/var/x` (line 5, column 21) and `{second}` are both `/var/x`: keep one of the two (component `web`)"
                )),
                "{err}"
            );
        }
        assert!(
            refused(&web("    writablePaths: [/]\n"))
                .contains("writable path `/` is the root directory")
        );
        assert!(refused(&web("    writablePaths: [/var/../etc]\n")).contains("holds `..`"));
    }

    #[test]
    fn probe_paths_patterns_and_requests_are_refused_with_the_rule() {
        let err = refused(&web("    healthPath: \"/he alth\"\n"));
        assert!(err.contains("`healthPath` \"/he alth\" of component `web` holds ' ': a probe path has no whitespace or control characters"), "{err}");
        let err = refused(&web("    readyPath: \"/ready\\t\"\n"));
        assert!(err.contains("`readyPath` \"/ready\\t\""), "{err}");
        let err = refused(&format!(
            "{}secret:\n  keys:\n    - name: K\n      pattern: \"[a-z\"\n",
            web("")
        ));
        assert!(
            err.contains("`pattern` of secret key `K` is not a valid regular expression"),
            "{err}"
        );
        let err = refused(&web(
            "    resources:\n      requests: {cpu: 2, memory: 1Gi}\n      limits: {cpu: 500m, memory: 2Gi}\n",
        ));
        assert!(
            err.contains("the cpu request 2 of component `web` is above its limit 500m"),
            "{err}"
        );
        let err = refused(&web("    resources:\n      requests: {memory: 1Gi}\n"));
        assert!(
            err.contains("the memory request 1Gi of component `web` is above its limit 512Mi"),
            "{err}"
        );
    }

    #[test]
    fn a_huge_project_file_is_refused_by_its_size() {
        let dir = repo("");
        let file = std::fs::File::create(dir.path().join("app").join(FILE_NAME)).unwrap();
        // Sparse: 200 MB that take no disk and, refused by size, no memory.
        file.set_len(200 * 1024 * 1024).unwrap();
        let err = load(&dir).unwrap_err();
        assert!(matches!(err, Error::TooLarge { .. }), "{err}");
        assert!(
            err.to_string().ends_with(
                "todo.yaml is larger than 1048576 bytes; a project file is a few kilobytes"
            ),
            "{err}"
        );
    }

    #[test]
    fn writable_paths_are_normalised() {
        for (given, normal) in [
            ("/var//x", "/var/x"),
            ("/var/x/", "/var/x"),
            ("/./var/x", "/var/x"),
        ] {
            assert_eq!(normal_path(given).unwrap(), normal);
        }
    }

    #[test]
    fn writable_paths_refuse_the_root_and_parent_directories() {
        for bad in ["/", "//", "/./", "/var/../etc", "/..", "x", ".."] {
            assert!(normal_path(bad).is_err(), "{bad}");
        }
    }
}
