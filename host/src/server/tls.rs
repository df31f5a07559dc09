//! TLS for the proxy listener: a certificate chain and key from PEM files, ALPN offering
//! HTTP/2 and HTTP/1.1, rustls with the ring provider.

use crate::config::TlsConfig;
use anyhow::Context;
use std::sync::Arc;

pub fn acceptor(config: &TlsConfig) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    let certs = rustls_pemfile::certs(&mut std::io::BufReader::new(
        std::fs::File::open(&config.cert)
            .with_context(|| format!("opening {}", config.cert.display()))?,
    ))
    .collect::<Result<Vec<_>, _>>()
    .with_context(|| format!("reading certificates from {}", config.cert.display()))?;
    if certs.is_empty() {
        anyhow::bail!("{} holds no PEM certificate", config.cert.display());
    }
    let key = rustls_pemfile::private_key(&mut std::io::BufReader::new(
        std::fs::File::open(&config.key)
            .with_context(|| format!("opening {}", config.key.display()))?,
    ))
    .with_context(|| format!("reading the key from {}", config.key.display()))?
    .with_context(|| format!("{} holds no PEM private key", config.key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the certificate and key do not form a usable pair")?;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(server)))
}
