//! Errors of the cloud link: what can be wrong with its configuration before it starts
//! (connection failures at run time are retried, never returned).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("no [mqtt] section in the config")]
    NotConfigured,
    #[error("mqtt.url {url:?}: {reason}")]
    Url { url: String, reason: &'static str },
    #[error("{key}: {source}")]
    File {
        key: &'static str,
        #[source]
        source: crate::config::files::FileError,
    },
    #[error("{what} {path} holds no usable {expected}")]
    Pem {
        what: &'static str,
        path: PathBuf,
        expected: &'static str,
    },
    #[error("mqtt.cert_file and mqtt.key_file go together: set both or neither")]
    HalfClientAuth,
    #[error("TLS set-up: {0}")]
    Tls(#[from] rustls::Error),
    #[error("no trusted root certificates: set mqtt.ca_file or install the system's CA bundle")]
    NoRoots,
}
