//! HTTP plumbing shared by every stage that talks to the network (image registry and downloads;
//! the GitHub API client builds its own on the same TLS provider).

use std::sync::Once;
use std::time::Duration;

use crate::error::Error;

/// Installs rustls' *ring* crypto provider as the process default, once.
///
/// reqwest is built with `rustls-no-provider` and octocrab with `rustls-ring`, so ring is the only
/// provider compiled in: one provider means rustls never has to guess (two compiled-in providers
/// and none installed makes rustls panic at the first TLS handshake), and ring needs no C/CMake
/// toolchain the way aws-lc-rs does, which keeps static musl release builds simple. Call it before
/// building any HTTP client; calling it again is free.
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Err means another provider is already installed: that one serves just as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// How long one HTTP exchange may wait; every wait in the tool has a deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// TCP + TLS connection set-up.
    pub connect: Duration,
    /// Silence between two reads of a response (a stalled server).
    pub read: Duration,
    /// The whole operation, retries included.
    pub total: Duration,
}

impl Default for Deadlines {
    /// AxVisor's xtask uses 30 min in total; a 60 s stall is a dead server. 10 s to connect is
    /// plenty for any reachable host, and keeps an offline runner from waiting long.
    fn default() -> Self {
        Deadlines {
            connect: Duration::from_secs(10),
            read: Duration::from_secs(60),
            total: Duration::from_secs(1800),
        }
    }
}

/// Builds the HTTP client for registry and image downloads: rustls, bounded redirects that stay
/// on http(s) and never go from https to http, connect and read deadlines (the total deadline is
/// enforced by the caller across retries).
pub fn http_client(deadlines: &Deadlines, max_redirects: usize) -> Result<reqwest::Client, Error> {
    install_crypto_provider();
    let policy = reqwest::redirect::Policy::custom(move |attempt| {
        let from = attempt.previous().last().cloned();
        if attempt.previous().len() > max_redirects {
            return attempt.error(format!("too many redirects (more than {max_redirects})"));
        }
        match from.and_then(|from| redirect_refusal(&from, attempt.url())) {
            Some(why) => attempt.error(why),
            None => attempt.follow(),
        }
    });
    reqwest::Client::builder()
        .user_agent(concat!("qemu-test/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(deadlines.connect)
        .read_timeout(deadlines.read)
        .redirect(policy)
        .build()
        .map_err(|e| Error::infra(format!("cannot create the HTTP client: {e}")))
}

/// Why a redirect from `from` to `to` is not followed: another scheme than http(s), or a
/// downgrade from https to plain http.
pub fn redirect_refusal(from: &reqwest::Url, to: &reqwest::Url) -> Option<String> {
    let (a, b) = (from.scheme(), to.scheme());
    let refused = !matches!(b, "http" | "https") || (a == "https" && b == "http");
    refused.then(|| {
        format!("{from} redirects to another scheme ({b}:, at {to}); only http(s) redirects are followed, and never from https to http")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_install_is_idempotent_and_clients_build() {
        install_crypto_provider();
        install_crypto_provider();
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
        assert!(http_client(&Deadlines::default(), 5).is_ok());
    }

    #[test]
    fn redirects_may_not_change_to_another_scheme_or_downgrade() {
        let url = |s: &str| reqwest::Url::parse(s).unwrap();
        let https = url("https://a.example/x.tar.gz");
        let http = url("http://a.example/x.tar.gz");
        assert_eq!(redirect_refusal(&http, &https), None);
        assert_eq!(redirect_refusal(&https, &https), None);
        let why = redirect_refusal(&https, &http).unwrap();
        assert!(why.contains("redirects to another scheme (http:"), "{why}");
        let why = redirect_refusal(&http, &url("file:///etc/passwd")).unwrap();
        assert!(why.contains("another scheme (file:"), "{why}");
    }
}
