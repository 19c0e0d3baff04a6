//! HTTPS: `weir serve --tls-cert FILE --tls-key FILE` (PEM). rustls with its *ring* provider
//! (rustls's long-standing default, audited; the pure-Rust RustCrypto provider is still an
//! alpha release), TLS 1.2 and 1.3, and ALPN offering `h2` and
//! `http/1.1`, so HTTP/2 clients get HTTP/2 over TLS and the others HTTP/1.1; hyper-util's
//! `auto` builder then serves whichever the client speaks.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::error::{Error, Result};

/// How long a client may take to finish the TLS handshake.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The certificate chain and private key files of an HTTPS server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificates: the server's first, then its chain.
    pub cert: PathBuf,
    /// The PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// A TLS acceptor for `files` offering ALPN `h2` and `http/1.1`, checked now so a bad file
/// fails `bind`, not the first client.
pub(crate) fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor> {
    acceptor_with_alpn(files, vec![b"h2".to_vec(), b"http/1.1".to_vec()])
}

/// A TLS acceptor for `files` offering `alpn` (none for the messaging protocols: their
/// clients send none or names of their own, and a server with no list accepts any).
pub(crate) fn acceptor_with_alpn(files: &TlsFiles, alpn: Vec<Vec<u8>>) -> Result<TlsAcceptor> {
    let certs = read_certs(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| pem_error("private key", &files.key, e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::InvalidArgument(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            Error::InvalidArgument(format!(
                "TLS: the certificate {} and key {} do not make a server identity: {e}",
                files.cert.display(),
                files.key.display()
            ))
        })?;
    config.alpn_protocols = alpn;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error("certificate", path, e))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| pem_error("certificate", path, e))?;
    if certs.is_empty() {
        return Err(Error::InvalidArgument(format!("TLS: {} holds no PEM certificate", path.display())));
    }
    Ok(certs)
}

fn pem_error(what: &str, path: &Path, e: rustls::pki_types::pem::Error) -> Error {
    match e {
        rustls::pki_types::pem::Error::Io(io) => Error::io("read a TLS file", path, io),
        other => Error::InvalidArgument(format!("TLS: {} holds no usable PEM {what}: {other:?}", path.display())),
    }
}
