use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier as _, SaltString};

use crate::error::BoxError;
use crate::principal::UserId;

/// Checks a user's password; the login route asks it. Argon2 is slow on purpose: an
/// implementation should verify with [`verify_password_off_runtime`] (or a
/// [`PasswordHashing`] pool), never with [`verify_password`] on the async runtime, or a few
/// concurrent sign-ins stall every other request. An [`HashingError::Busy`] returned as the
/// error (boxed) makes the login route answer 503 with `Retry-After`.
#[async_trait::async_trait]
pub trait PasswordVerifier: Send + Sync + 'static {
    /// The user, if `password` is theirs and they are active; `None` for any mismatch (an
    /// unknown user and a wrong password are not told apart).
    async fn verify(&self, user: &str, password: &str) -> Result<Option<UserId>, BoxError>;
}

/// An Argon2id hash of `password` in PHC string form, with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, BoxError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| e.to_string())?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| e.to_string())?
        .to_string())
}

/// Whether `password` matches `hash` (a PHC string from [`hash_password`]). A malformed hash
/// matches nothing.
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// Why an off-runtime hash or verification did not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HashingError {
    /// Every hashing thread is busy and the queue is full: try again shortly (answer 503).
    #[error("password hashing is busy; try again shortly")]
    Busy,
    /// The hashing thread failed (it panicked, or the runtime is shutting down).
    #[error("password hashing failed: {0}")]
    Failed(String),
}

/// Runs Argon2 (deliberately slow, ~tens of ms of CPU) on tokio's blocking pool, at most
/// `concurrency` at a time, so sign-ins never occupy the async worker threads that serve every
/// other request, and never take every core. Callers past `concurrency` wait for a turn; once
/// `queue` callers are waiting, more are refused at once with [`HashingError::Busy`] instead of
/// piling up. Cloning shares the pool.
///
/// [`PasswordHashing::shared`] is one pool for the whole process (what
/// [`verify_password_off_runtime`] and [`hash_password_off_runtime`] use).
///
/// ```
/// use tower_agent_auth::server::PasswordHashing;
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let pool = PasswordHashing::new(1, 16);
/// let hash = pool.hash("correct horse".into()).await.unwrap();
/// assert!(pool.verify(hash, "correct horse".into()).await.unwrap());
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct PasswordHashing {
    inner: Arc<Pool>,
}

#[derive(Debug)]
struct Pool {
    permits: Arc<tokio::sync::Semaphore>,
    waiting: AtomicUsize,
    queue: usize,
}

impl PasswordHashing {
    /// At most `concurrency` (at least 1) hashes at once, and at most `queue` callers waiting.
    pub fn new(concurrency: usize, queue: usize) -> Self {
        Self {
            inner: Arc::new(Pool {
                permits: Arc::new(tokio::sync::Semaphore::new(concurrency.max(1))),
                waiting: AtomicUsize::new(0),
                queue,
            }),
        }
    }

    /// The process-wide pool: half the cores (at least one) hash at once, so the other half is
    /// always left for the rest of the traffic; 64 waiting per hashing thread.
    pub fn shared() -> &'static Self {
        static SHARED: OnceLock<PasswordHashing> = OnceLock::new();
        SHARED.get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            let concurrency = (cores / 2).max(1);
            Self::new(concurrency, 64 * concurrency)
        })
    }

    /// How many hashes may run at once.
    pub fn available(&self) -> usize {
        self.inner.permits.available_permits()
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashingError> {
        let permit = match self.inner.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                // Count ourselves in the queue, or leave at once when it is full.
                let queued =
                    self.inner
                        .waiting
                        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                            (n < self.inner.queue).then_some(n + 1)
                        });
                if queued.is_err() {
                    return Err(HashingError::Busy);
                }
                // Leaves the queue however the wait ends, a dropped caller included.
                let _queued = Queued(&self.inner.waiting);
                self.inner
                    .permits
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|e| HashingError::Failed(e.to_string()))?
            }
        };
        tokio::task::spawn_blocking(move || {
            // The turn ends when the work does, even if the caller stopped waiting for it.
            let _permit = permit;
            work()
        })
        .await
        .map_err(|e| HashingError::Failed(e.to_string()))
    }

    /// [`verify_password`], on the pool.
    pub async fn verify(&self, hash: String, password: String) -> Result<bool, HashingError> {
        let password = zeroize::Zeroizing::new(password);
        self.run(move || verify_password(&hash, &password)).await
    }

    /// [`hash_password`], on the pool.
    pub async fn hash(&self, password: String) -> Result<String, BoxError> {
        let password = zeroize::Zeroizing::new(password);
        self.run(move || hash_password(&password)).await?
    }
}

/// Takes one caller out of the queue count when dropped.
struct Queued<'a>(&'a AtomicUsize);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// [`verify_password`] on the [shared](PasswordHashing::shared) pool: what an async
/// [`PasswordVerifier`] should call.
pub async fn verify_password_off_runtime(
    hash: String,
    password: String,
) -> Result<bool, HashingError> {
    PasswordHashing::shared().verify(hash, password).await
}

/// [`hash_password`] on the [shared](PasswordHashing::shared) pool.
pub async fn hash_password_off_runtime(password: String) -> Result<String, BoxError> {
    PasswordHashing::shared().hash(password).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(&hash, "correct horse"));
        assert!(!verify_password(&hash, "correct horsf"));
        assert!(!verify_password("not a hash", "correct horse"));
        assert_ne!(hash, hash_password("correct horse").unwrap(), "salted");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_pool_verifies_off_the_runtime_and_refuses_past_its_queue() {
        let pool = PasswordHashing::new(1, 1);
        let hash = pool.hash("pw".into()).await.unwrap();
        assert!(pool.verify(hash.clone(), "pw".into()).await.unwrap());
        assert!(!pool.verify(hash.clone(), "nope".into()).await.unwrap());
        // One running, one waiting: a third is refused at once.
        let (a, b, c) = tokio::join!(
            pool.verify(hash.clone(), "pw".into()),
            pool.verify(hash.clone(), "pw".into()),
            pool.verify(hash.clone(), "pw".into()),
        );
        assert!(a.unwrap() && b.unwrap());
        assert!(matches!(c, Err(HashingError::Busy)));
        assert_eq!(pool.available(), 1, "permits are given back");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_caller_that_stops_waiting_leaves_the_queue() {
        let pool = PasswordHashing::new(1, 1);
        let hash = hash_password("pw").unwrap();
        let mut running = Box::pin(pool.verify(hash.clone(), "pw".into()));
        let mut waiting = Box::pin(pool.verify(hash.clone(), "pw".into()));
        // Start both (one runs, one waits), then give up on the waiting one.
        assert!(futures_poll(running.as_mut()).await.is_none());
        assert!(futures_poll(waiting.as_mut()).await.is_none());
        drop(waiting);
        assert!(running.await.unwrap());
        // The queue has room again: a full one would answer Busy at once.
        let (a, b) = tokio::join!(
            pool.verify(hash.clone(), "pw".into()),
            pool.verify(hash.clone(), "pw".into())
        );
        assert!(a.unwrap() && b.unwrap());
    }

    /// Polls once: `Some` if it finished.
    async fn futures_poll<F: std::future::Future + Unpin>(future: F) -> Option<F::Output> {
        let mut future = future;
        std::future::poll_fn(|cx| {
            std::task::Poll::Ready(match std::pin::Pin::new(&mut future).poll(cx) {
                std::task::Poll::Ready(out) => Some(out),
                std::task::Poll::Pending => None,
            })
        })
        .await
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_current_thread_runtime_keeps_running_while_hashing() {
        // The verification runs on another thread: this task's timer fires meanwhile.
        let hash = hash_password("pw").unwrap();
        let ticks = std::sync::Arc::new(AtomicUsize::new(0));
        let counter = ticks.clone();
        let ticker = tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                counter.fetch_add(1, Ordering::Relaxed);
            }
        });
        let pool = PasswordHashing::new(1, 4);
        for _ in 0..3 {
            pool.verify(hash.clone(), "pw".into()).await.unwrap();
        }
        ticker.abort();
        assert!(ticks.load(Ordering::Relaxed) > 3, "the runtime was blocked");
    }
}
