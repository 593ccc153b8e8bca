//! `image-builder build --via frontend`: the same build, but BuildKit runs our
//! frontend image on a generated build file instead of the Dockerfile frontend on a
//! generated Dockerfile.

use crate::build::{self, BuildOptions, BuildResult, Engine, Event, Progress};
use crate::context::{self, GENERATED_DOCKERFILE};
use crate::error::{Error, Result};
use crate::frontend_image;
use crate::plan::{BuilderKind, Plan};
use crate::spec::ComponentSpec;

/// Fail unless the engine builds with BuildKit: only BuildKit runs frontends.
/// `classic_chosen`: the command line asked for the classic builder.
pub fn require_buildkit(engine: &Engine, classic_chosen: bool) -> Result<()> {
    if engine.builder == BuilderKind::BuildKit {
        return Ok(());
    }
    let env_off = matches!(
        std::env::var("DOCKER_BUILDKIT").ok().as_deref(),
        Some("0") | Some("false")
    );
    Err(Error::Invalid {
        what: "--via frontend".into(),
        reason: if classic_chosen {
            "it needs BuildKit, and `--builder classic` chooses the classic builder".into()
        } else if env_off {
            "it needs BuildKit, and DOCKER_BUILDKIT=0 turns BuildKit off".into()
        } else {
            format!(
                "it needs BuildKit, and this Docker Engine ({}) builds with the classic builder only",
                engine.version
            )
        },
        fix: "unset DOCKER_BUILDKIT (or drop `--builder classic`), use a Docker Engine with BuildKit (18.09 or later on Linux), or build without `--via frontend`".into(),
    })
}

/// The build file for a plan: `# syntax=` naming the frontend image, then the
/// component section that makes the frontend plan the same image.
pub fn build_file(plan: &Plan, frontend: &str) -> String {
    let spec = ComponentSpec {
        path: ".".into(),
        name: Some(plan.component.clone()),
        stack: Some(plan.stack),
        port: Some(plan.port),
        base_images: plan.base_images.clone(),
        dockerfile: plan.dockerfile_path.clone(),
        build_args: plan.build_args.clone(),
        target: plan.target.clone(),
        platform: plan.platform.clone(),
        // The frontend only needs to know that there is one: BuildKit fetches it
        // from this build's session.
        ca_cert: plan.ca_cert.as_ref().map(|_| crate::ca::SECRET_ID.into()),
        ..Default::default()
    };
    let yaml = serde_yaml_ng::to_string(&spec).expect("a spec serialises");
    format!("# syntax={frontend}\n{yaml}")
}

/// Make sure the frontend image exists, building it from this executable if not.
pub async fn prepare(
    engine: &Engine,
    frontend: &str,
    classic_chosen: bool,
    progress: &dyn Progress,
) -> Result<()> {
    require_buildkit(engine, classic_chosen)?;
    if frontend_image::ensure(engine, frontend, false).await? {
        progress.event(
            "frontend",
            Event::Status(format!("built the frontend image {frontend}")),
        );
    }
    Ok(())
}

/// The plan as it travels to the frontend: the build file (under the generated
/// Dockerfile's name, so the generated steps drop it like that one) instead of the
/// Dockerfile.
pub fn frontend_plan(plan: &Plan, frontend: &str) -> Plan {
    let mut p = plan.clone();
    p.dockerfile_name = GENERATED_DOCKERFILE.to_string();
    p.extra_files = context::extra_files(GENERATED_DOCKERFILE, &build_file(plan, frontend), false);
    p
}

/// Build every plan through the frontend.
pub async fn build_all(
    engine: &Engine,
    plans: &[Plan],
    frontend: &str,
    opts: &BuildOptions,
    progress: &dyn Progress,
) -> Vec<Result<BuildResult>> {
    let plans: Vec<Plan> = plans.iter().map(|p| frontend_plan(p, frontend)).collect();
    build::build_all(engine, &plans, opts, progress).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{self, PlanOptions};
    use crate::spec::{BaseImages, StackKind};

    #[test]
    fn the_build_file_names_the_frontend_and_reads_back_as_the_plan() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("api");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("requirements.txt"), "fastapi\n").unwrap();
        let spec = ComponentSpec {
            port: Some(9000),
            ..ComponentSpec::new(&dir)
        };
        let opts = PlanOptions {
            builder: Some(BuilderKind::BuildKit),
            base_images: BaseImages {
                builder: Some("py:b".into()),
                runtime: Some("py:r".into()),
            },
            use_cache: false,
        };
        let p = plan::plan(&spec, &opts).unwrap();
        let text = build_file(&p, "image-builder/frontend:x");
        assert!(
            text.starts_with("# syntax=image-builder/frontend:x\n"),
            "{text}"
        );
        let back = crate::frontend::parse_build_file(&text).unwrap();
        assert_eq!(back.name.as_deref(), Some("api"));
        assert_eq!(back.stack, Some(StackKind::Python));
        assert_eq!(back.port, Some(9000));
        assert_eq!(back.base_images, opts.base_images);

        let fp = frontend_plan(&p, "image-builder/frontend:x");
        assert_eq!(fp.dockerfile_name, GENERATED_DOCKERFILE);
        assert_eq!(fp.digest, p.digest, "same inputs, same tag");
        assert!(
            fp.extra_files
                .iter()
                .any(|f| f.name == GENERATED_DOCKERFILE && f.content == text.as_bytes())
        );
    }
}
