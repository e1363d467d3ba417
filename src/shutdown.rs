//! Waiting for a request to stop (SIGINT or SIGTERM), for the long-running
//! front ends (`serve --http`, `watch`).

/// Resolves when the process receives SIGINT or SIGTERM.
pub async fn requested() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}
