//! Retrying a call to the API server: the one policy every step uses.

use std::time::Duration;

/// Retries what the server says is worth retrying (429, 5xx), with backoff, a few times.
pub async fn retry<T, F, Fut>(mut call: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, kube::Error>>,
{
    let mut delay = Duration::from_millis(200);
    for _ in 0..4 {
        match call().await {
            Err(kube::Error::Api(s)) if s.code == 429 || s.code >= 500 => {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            other => return other,
        }
    }
    call().await
}
