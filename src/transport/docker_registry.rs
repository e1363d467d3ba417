//! What a registry holds, asked of the Engine (which has the registry's
//! credentials and trust settings): whether an image reference by digest
//! can still be pulled, without pulling it.

use super::docker::{DockerClient, DockerError};

impl DockerClient {
    /// Asks the Engine's distribution endpoint for `reference` (one call;
    /// nothing is pulled). An error when the registry does not serve it
    /// (deleted, unknown repository) or cannot be reached.
    pub async fn registry_has(&self, reference: &str) -> Result<(), DockerError> {
        self.docker
            .inspect_registry_image(reference, None)
            .await
            .map(|_| ())
            .map_err(|e| DockerError::api(format!("look up {reference} in its registry"), e))
    }
}
