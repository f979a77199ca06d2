//! The process-wide TLS crypto provider.
//!
//! kube (through hyper-rustls) and reqwest both use rustls. With more than one provider compiled
//! in, rustls cannot pick a default and panics when a client is built, so the binary and the tests
//! install exactly one (ring, the provider kube is built with) before any client exists.

/// Installs ring as rustls' process default. Idempotent: a second call keeps the first provider.
pub fn install_default_provider() {
    // `Err` only means a provider is already installed, which is the state we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
