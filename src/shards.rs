//! Serving on PostgreSQL with one single-threaded runtime per thread, each
//! with its own share of the pool.
//!
//! Why: a request on PostgreSQL is a ping-pong between the request's task
//! and the task that owns the connection's socket (tokio-postgres spawns
//! one per connection). On tokio's multi-threaded runtime the two land on
//! different workers, and every query then wakes a parked thread: under a
//! nested read that thread switching was a third of the server's CPU
//! (docs/BENCHMARKS.md). Here a shard's connections are opened by, and
//! their tasks run on, the shard's own thread, which also accepts and
//! serves its HTTP connections: a request never leaves its thread.
//!
//! SQLite keeps the multi-threaded runtime: its statements block the
//! thread that runs them, and a write waiting for the file's lock must not
//! hold up every other request of its thread.

use std::cell::Cell;

use tokio::sync::mpsc;

use crate::http::Shutdown;

thread_local! {
    /// The shard this thread serves, if it is a shard's thread.
    static SHARD: Cell<Option<usize>> = const { Cell::new(None) };
}

/// The shard the calling thread serves (`None` off the shards: start-up,
/// the command line, background work, tests).
pub fn current() -> Option<usize> {
    SHARD.get()
}

/// Serves `router` on `listener` from `shards` threads (with none, on the
/// calling runtime) until `shutdown` begins, then lets every shard finish
/// its in-flight requests and WebSockets. Each thread accepts from the same
/// socket, so a busy shard leaves new connections to an idle one.
pub async fn serve(
    listener: std::net::TcpListener,
    router: axum::Router,
    shards: usize,
    shutdown: Shutdown,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    if shards == 0 {
        return serve_until_shutdown(listener, router, shutdown).await;
    }
    let (finished_tx, mut finished) = mpsc::unbounded_channel();
    for index in 0..shards {
        let listener = listener.try_clone()?;
        let (router, shutdown) = (router.clone(), shutdown.clone());
        let finished = finished_tx.clone();
        std::thread::Builder::new()
            .name(format!("shard-{index}"))
            .spawn(move || {
                SHARD.set(Some(index));
                let served = shard_outcome(index, || {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .and_then(|runtime| {
                            runtime.block_on(serve_until_shutdown(listener, router, shutdown))
                        })
                });
                let _ = finished.send(served);
            })?;
    }
    drop(finished_tx);
    // Every shard's end (the channel closes when all are gone); one that
    // cannot serve, or panicked, stops all.
    while let Some(served) = finished.recv().await {
        if let Err(error) = served {
            shutdown.begin();
            return Err(error);
        }
    }
    Ok(())
}

/// What shard `index` ended with: `serve`'s own result, or an error for a
/// panic that escaped its runtime (a request's panic stays in its task; the
/// panic hook has printed this one). Without it the thread died silently,
/// and the process served on with fewer threads and exited 0.
fn shard_outcome(index: usize, serve: impl FnOnce() -> std::io::Result<()>) -> std::io::Result<()> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(serve))
        .unwrap_or_else(|_| Err(std::io::Error::other(format!("shard {index} panicked"))))
}

/// Serves on the calling runtime until `shutdown` begins and every
/// request and WebSocket it holds is done.
async fn serve_until_shutdown(
    listener: std::net::TcpListener,
    router: axum::Router,
    shutdown: Shutdown,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let stopping = shutdown.clone();
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { stopping.begun().await })
        .await?;
    // `axum::serve` drains HTTP requests only; WebSockets were told to
    // close (1001) and get to send their close frame.
    shutdown.sockets_closed().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_shard_that_panics_ends_with_an_error() {
        let outcome = super::shard_outcome(3, || panic!("a shard's panic, on purpose"));
        assert_eq!(outcome.unwrap_err().to_string(), "shard 3 panicked");
        assert!(super::shard_outcome(0, || Ok(())).is_ok());
    }
}
