//! LLB: BuildKit's build graph, as marshalled operations.
//!
//! Each operation is encoded as protobuf and named by the SHA-256 of its bytes;
//! operations point at their inputs by those names. A [`Graph`] collects them and
//! hands BuildKit a [`pb::Definition`] ending in the given state.

use std::collections::HashMap;

use bollard_buildkit_proto::pb;
use prost::Message as _;
use sha2::{Digest as _, Sha256};

/// A filesystem state: an output of an operation, or the empty filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Scratch,
    Output { digest: String, index: i64 },
}

/// A cache mount of a command.
#[derive(Debug, Clone)]
pub struct CacheMount {
    pub target: String,
    pub id: String,
}

/// A secret of the build's session, mounted as a root-only file.
#[derive(Debug, Clone)]
pub struct SecretMount {
    pub target: String,
    pub id: String,
}

/// What a command runs with.
#[derive(Debug, Clone)]
pub struct Exec {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub user: String,
    pub caches: Vec<CacheMount>,
    pub secrets: Vec<SecretMount>,
}

/// How a copy behaves (Dockerfile `COPY` semantics).
#[derive(Debug, Clone)]
pub struct Copy {
    pub src: String,
    pub dest: String,
    /// Unpack archives (for an uploaded context).
    pub unpack: bool,
}

/// Operations collected for one definition.
#[derive(Debug, Clone)]
pub struct Graph {
    platform: pb::Platform,
    ops: Vec<(String, Vec<u8>)>,
    metadata: HashMap<String, pb::OpMetadata>,
}

fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// `os/arch[/variant]` as BuildKit's platform.
pub fn platform(spec: &str) -> pb::Platform {
    let mut parts = spec.split('/');
    pb::Platform {
        os: parts.next().unwrap_or("linux").to_string(),
        architecture: parts.next().unwrap_or_default().to_string(),
        variant: parts.next().unwrap_or_default().to_string(),
        ..Default::default()
    }
}

/// This machine's platform in Go's spelling.
pub fn host_platform() -> pb::Platform {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    };
    pb::Platform {
        os: "linux".into(),
        architecture: arch.into(),
        ..Default::default()
    }
}

/// `docker.io/library/node:20-alpine` for `node:20-alpine`, as BuildKit names images.
pub fn normalize_image(r: &str) -> String {
    let (first, rest) = r.split_once('/').unwrap_or(("", r));
    let named = if first.is_empty() {
        format!("docker.io/library/{rest}")
    } else if first.contains('.') || first.contains(':') || first == "localhost" {
        r.to_string()
    } else {
        format!("docker.io/{r}")
    };
    let last = named.rsplit('/').next().unwrap_or_default();
    if last.contains(':') || last.contains('@') {
        named
    } else {
        format!("{named}:latest")
    }
}

impl Graph {
    pub fn new(platform: pb::Platform) -> Self {
        Graph {
            platform,
            ops: Vec::new(),
            metadata: HashMap::new(),
        }
    }

    pub fn platform(&self) -> &pb::Platform {
        &self.platform
    }

    fn add(&mut self, inputs: Vec<pb::Input>, op: pb::op::Op, name: Option<&str>) -> String {
        // Marshalled as BuildKit's own client does (empty constraints on every
        // operation, a platform except on sources other than images), so an operation
        // the Dockerfile frontend already made in this build gets the same name and is
        // not run again: an uploaded context can be fetched only once.
        let platform_specific = match &op {
            pb::op::Op::Source(s) => s.identifier.starts_with("docker-image://"),
            _ => true,
        };
        let op = pb::Op {
            inputs,
            platform: platform_specific.then(|| self.platform.clone()),
            constraints: Some(pb::WorkerConstraints::default()),
            op: Some(op),
        };
        let bytes = op.encode_to_vec();
        let digest = digest_of(&bytes);
        if !self.ops.iter().any(|(d, _)| d == &digest) {
            self.ops.push((digest.clone(), bytes));
        }
        if let Some(name) = name {
            self.metadata.insert(
                digest.clone(),
                pb::OpMetadata {
                    description: HashMap::from([("llb.customname".into(), name.to_string())]),
                    ..Default::default()
                },
            );
        }
        digest
    }

    fn output(digest: String) -> State {
        State::Output { digest, index: 0 }
    }

    /// A source: `docker-image://…`, `local://…`, `https://…`.
    pub fn source(
        &mut self,
        identifier: &str,
        attrs: HashMap<String, String>,
        name: Option<&str>,
    ) -> State {
        let d = self.add(
            Vec::new(),
            pb::op::Op::Source(pb::SourceOp {
                identifier: identifier.to_string(),
                attrs,
            }),
            name,
        );
        Self::output(d)
    }

    /// An image as a state (`scratch` is the empty one).
    pub fn image(&mut self, reference: &str, name: &str) -> State {
        if reference == "scratch" {
            return State::Scratch;
        }
        self.source(
            &format!("docker-image://{}", normalize_image(reference)),
            HashMap::new(),
            Some(name),
        )
    }

    /// Inputs for an operation; `None` for scratch (index -1).
    fn input_index(inputs: &mut Vec<pb::Input>, s: &State) -> i64 {
        match s {
            State::Scratch => -1,
            State::Output { digest, index } => {
                let i = pb::Input {
                    digest: digest.clone(),
                    index: *index,
                };
                if let Some(pos) = inputs.iter().position(|x| x == &i) {
                    pos as i64
                } else {
                    inputs.push(i);
                    inputs.len() as i64 - 1
                }
            }
        }
    }

    /// Run a command on `root`; the result is the changed root filesystem.
    pub fn exec(&mut self, root: &State, e: &Exec, name: &str) -> State {
        let mut inputs = Vec::new();
        let root_input = Self::input_index(&mut inputs, root);
        let mut mounts = vec![pb::Mount {
            input: root_input,
            dest: "/".into(),
            output: 0,
            ..Default::default()
        }];
        for c in &e.caches {
            mounts.push(pb::Mount {
                input: -1,
                dest: c.target.clone(),
                output: -1,
                mount_type: pb::MountType::Cache as i32,
                cache_opt: Some(pb::CacheOpt {
                    id: c.id.clone(),
                    sharing: pb::CacheSharingOpt::Shared as i32,
                }),
                ..Default::default()
            });
        }
        for sm in &e.secrets {
            mounts.push(pb::Mount {
                input: -1,
                dest: sm.target.clone(),
                output: -1,
                mount_type: pb::MountType::Secret as i32,
                secret_opt: Some(pb::SecretOpt {
                    id: sm.id.clone(),
                    uid: 0,
                    gid: 0,
                    mode: 0o400,
                    optional: false,
                }),
                ..Default::default()
            });
        }
        let d = self.add(
            inputs,
            pb::op::Op::Exec(pb::ExecOp {
                meta: Some(pb::Meta {
                    args: e.args.clone(),
                    env: e.env.clone(),
                    cwd: e.cwd.clone(),
                    user: e.user.clone(),
                    ..Default::default()
                }),
                mounts,
                ..Default::default()
            }),
            Some(name),
        );
        Self::output(d)
    }

    /// Copy `c.src` of `from` onto `onto` at `c.dest`.
    pub fn copy(&mut self, onto: &State, from: &State, c: &Copy, name: Option<&str>) -> State {
        let mut inputs = Vec::new();
        let dest = Self::input_index(&mut inputs, onto);
        let src = Self::input_index(&mut inputs, from);
        let action = pb::FileAction {
            input: dest,
            secondary_input: src,
            output: 0,
            action: Some(pb::file_action::Action::Copy(pb::FileActionCopy {
                src: c.src.clone(),
                dest: c.dest.clone(),
                // -1: keep the source's mode and time
                mode: -1,
                timestamp: -1,
                // Unpacking is the Dockerfile frontend's plain copy of the archive;
                // otherwise `COPY` semantics.
                follow_symlink: !c.unpack,
                dir_copy_contents: !c.unpack,
                attempt_unpack_docker_compatibility: c.unpack,
                create_dest_path: !c.unpack,
                allow_wildcard: !c.unpack,
                allow_empty_wildcard: !c.unpack,
                ..Default::default()
            })),
        };
        let d = self.add(
            inputs,
            pb::op::Op::File(pb::FileOp {
                actions: vec![action],
            }),
            name,
        );
        Self::output(d)
    }

    /// `mkdir -p path` (mode 0755) on `onto`.
    pub fn mkdir(&mut self, onto: &State, path: &str, name: &str) -> State {
        let mut inputs = Vec::new();
        let dest = Self::input_index(&mut inputs, onto);
        let action = pb::FileAction {
            input: dest,
            secondary_input: -1,
            output: 0,
            action: Some(pb::file_action::Action::Mkdir(pb::FileActionMkDir {
                path: path.to_string(),
                mode: 0o755,
                make_parents: true,
                timestamp: -1,
                ..Default::default()
            })),
        };
        let d = self.add(
            inputs,
            pb::op::Op::File(pb::FileOp {
                actions: vec![action],
            }),
            Some(name),
        );
        Self::output(d)
    }

    /// The definition that ends in `out` (empty when `out` is scratch).
    pub fn definition(&self, out: &State) -> pb::Definition {
        let mut def: Vec<Vec<u8>> = self.ops.iter().map(|(_, b)| b.clone()).collect();
        if let State::Output { digest, index } = out {
            // BuildKit takes the last operation, one without a body, as the result.
            let last = pb::Op {
                inputs: vec![pb::Input {
                    digest: digest.clone(),
                    index: *index,
                }],
                ..Default::default()
            };
            def.push(last.encode_to_vec());
        }
        pb::Definition {
            def,
            metadata: self.metadata.clone(),
            source: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_are_normalised_like_buildkit() {
        assert_eq!(
            normalize_image("node:20-alpine"),
            "docker.io/library/node:20-alpine"
        );
        assert_eq!(
            normalize_image("ib-test/node:1"),
            "docker.io/ib-test/node:1"
        );
        assert_eq!(
            normalize_image("busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            normalize_image("localhost:5000/a/b"),
            "localhost:5000/a/b:latest"
        );
        assert_eq!(
            normalize_image("ghcr.io/x/y@sha256:ab"),
            "ghcr.io/x/y@sha256:ab"
        );
    }

    #[test]
    fn identical_operations_share_one_name_and_inputs_point_at_names() {
        let mut g = Graph::new(host_platform());
        let a = g.image("busybox", "a");
        let b = g.image("busybox", "b");
        assert_eq!(a, b);
        let c = g.mkdir(&a, "/app", "mkdir");
        let def = g.definition(&c);
        assert_eq!(def.def.len(), 3);
        let last = pb::Op::decode(&def.def[2][..]).unwrap();
        let State::Output { digest, .. } = &c else {
            panic!("mkdir has an output")
        };
        assert_eq!(&last.inputs[0].digest, digest);
        assert_eq!(digest, &digest_of(&def.def[1]));
    }
}
