//! The two things the SES input fetches: SNS signing certificates (cached, since SNS
//! signs every message with one of a few) and subscription confirmation URLs. Both URLs
//! have already been checked to be `https://sns.<region>.amazonaws.com/...`
//! ([`crate::feedback::ses::sns_url`]); nothing else is ever fetched.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use url::Url;

use super::FeedbackError;

/// Bounds each fetch, from connecting to the end of the answer.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// A PEM certificate is about 2 KiB; anything much larger is not one.
const MAX_CERTIFICATE_BYTES: usize = 64 * 1024;
/// SNS rotates its signing certificate rarely; a handful of entries is plenty, and the
/// cap keeps a stream of distinct (valid SNS) URLs from growing memory.
const MAX_CACHED_CERTIFICATES: usize = 16;

/// Fetches from SNS for one process and caches the certificates.
#[derive(Default)]
pub struct SnsClient {
    http: OnceLock<Option<reqwest::Client>>,
    certificates: Mutex<HashMap<Url, Arc<Vec<u8>>>>,
    /// Test hook, see [`SnsClient::send_fetches_to`].
    redirect: RwLock<Option<Url>>,
}

impl SnsClient {
    /// The PEM at `url`, from the cache or fetched once.
    pub(super) async fn certificate(&self, url: &Url) -> Result<Arc<Vec<u8>>, FeedbackError> {
        if let Some(pem) = lock(&self.certificates).get(url) {
            return Ok(pem.clone());
        }
        let unavailable =
            || FeedbackError::Upstream("the SNS signing certificate could not be fetched");
        let mut answer = self.get(url).await.ok_or_else(unavailable)?;
        let mut pem = Vec::new();
        while let Some(chunk) = answer.chunk().await.map_err(|_| unavailable())? {
            if pem.len() + chunk.len() > MAX_CERTIFICATE_BYTES {
                return Err(unavailable());
            }
            pem.extend_from_slice(&chunk);
        }
        let pem = Arc::new(pem);
        let mut cache = lock(&self.certificates);
        if cache.len() >= MAX_CACHED_CERTIFICATES {
            cache.clear();
        }
        cache.insert(url.clone(), pem.clone());
        Ok(pem)
    }

    /// Confirms an SNS subscription by fetching its `SubscribeURL`.
    pub(super) async fn confirm_subscription(&self, url: &Url) -> Result<(), FeedbackError> {
        self.get(url).await.map(drop).ok_or(FeedbackError::Upstream(
            "the SNS subscription could not be confirmed",
        ))
    }

    /// A 2xx answer to a GET of `url`, or `None` (logged) when there is none.
    async fn get(&self, url: &Url) -> Option<reqwest::Response> {
        let client = self.http.get_or_init(build_client).as_ref()?;
        let target = self.target(url);
        match client.get(target).send().await {
            Ok(answer) if answer.status().is_success() => Some(answer),
            Ok(answer) => {
                tracing::warn!(status = answer.status().as_u16(), host = ?url.host_str(), "SNS fetch refused");
                None
            }
            Err(error) => {
                tracing::warn!(error = %error.without_url(), host = ?url.host_str(), "SNS fetch failed");
                None
            }
        }
    }

    /// Where a request for `url` really goes: `url` itself, except under the test hook.
    fn target(&self, url: &Url) -> Url {
        let redirect = self
            .redirect
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match redirect.as_ref() {
            Some(base) => {
                let mut target = base.clone();
                target.set_path(url.path());
                target.set_query(url.query());
                target
            }
            None => url.clone(),
        }
    }

    /// **Test hook.** Sends every SNS fetch to `base` (same path and query) instead of
    /// the SNS host, so that a test can serve a certificate it made. The URLs in the
    /// message are still checked to be SNS URLs first, exactly as in production.
    ///
    /// Deliberately reachable only from Rust code that links the library (the tests):
    /// no setting, environment variable or command-line flag leads here, so an operator
    /// cannot switch it on, by mistake or otherwise, in a deployed `optin`.
    #[doc(hidden)]
    pub fn send_fetches_to(&self, base: Url) {
        *self
            .redirect
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(base);
    }
}

fn build_client() -> Option<reqwest::Client> {
    reqwest::Client::builder()
        // A redirect could lead away from the SNS host that was checked.
        .redirect(reqwest::redirect::Policy::none())
        .timeout(FETCH_TIMEOUT)
        .connect_timeout(FETCH_TIMEOUT)
        .user_agent(concat!("optin/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|error| tracing::error!(%error, "no HTTP client for SNS"))
        .ok()
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Nothing panics while holding it; a poisoned cache is still a valid cache.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
