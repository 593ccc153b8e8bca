//! The project file is the one schema for both binaries: this is how a
//! component maps onto image-builder's `ComponentSpec` (see
//! docs/configuration.md, "image-builder").

use image_builder::spec::{BaseImages, ComponentSpec};

use super::{Component, Project};

impl Component {
    /// What image-builder builds for this component.
    pub fn build_spec(&self, project: &Project) -> ComponentSpec {
        ComponentSpec {
            path: project.root.join(&self.path),
            name: Some(self.name.clone()),
            project: Some(project.name.clone()),
            image: Some(self.image.clone()),
            stack: self.stack,
            port: Some(self.port),
            base_images: BaseImages {
                builder: self.build.builder_image.clone(),
                runtime: self.build.runtime_image.clone(),
            },
            dockerfile: self.build.dockerfile.clone(),
            build_args: self.build.args.clone(),
            target: self.build.target.clone(),
            platform: self.build.platform.clone(),
            module: self.build.module.clone(),
            ca_cert: project.ca_cert.as_ref().map(|p| project.root.join(p)),
            command: self.build.command.clone(),
        }
    }
}
