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
    /// AxVisor's xtask uses 30 s to connect and 30 min in total; a 60 s stall is a dead server.
    fn default() -> Self {
        Deadlines {
            connect: Duration::from_secs(30),
            read: Duration::from_secs(60),
            total: Duration::from_secs(1800),
        }
    }
}

/// Builds the HTTP client for registry and image downloads: rustls, bounded redirects,
/// connect and read deadlines (the total deadline is enforced by the caller across retries).
pub fn http_client(deadlines: &Deadlines, max_redirects: usize) -> Result<reqwest::Client, Error> {
    install_crypto_provider();
    reqwest::Client::builder()
        .user_agent(concat!("qemu-test/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(deadlines.connect)
        .read_timeout(deadlines.read)
        .redirect(reqwest::redirect::Policy::limited(max_redirects))
        .build()
        .map_err(|e| Error::infra(format!("cannot create the HTTP client: {e}")))
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
}
