//! The link's settings, taken from the validated config once at start-up: broker address,
//! credentials (the password read from its file, never printed), TLS, topics and tuning.
//! Every file is read here so a bad path stops the daemon at start, not at the first connect.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rumqttc::{LastWill, MqttOptions, QoS, TlsConfiguration, Transport};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

use super::backoff::Backoff;
use super::error::SyncError;
use crate::config::files::{self, Content, Reader};
use crate::config::types::Config;

/// Largest in-flight window accepted (rumqttc numbers packets with a u16).
pub const MAX_WINDOW: usize = 10_000;

/// A password: usable, never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone)]
pub struct Credentials {
    pub username: String,
    pub password: Secret,
}

#[derive(Debug, Clone)]
pub struct SyncOptions {
    pub site_id: String,
    /// `{topic_prefix}/{site.id}`: the `P` of the contract.
    pub prefix: String,
    pub version: String,
    pub started_at: DateTime<Utc>,
    pub host: String,
    pub port: u16,
    pub client_id: String,
    pub credentials: Option<Credentials>,
    /// Set for `mqtts://`.
    pub tls: Option<Arc<ClientConfig>>,
    pub telemetry_interval: Duration,
    /// Nominal phase voltage, for the grid power per phase in telemetry (the view carries
    /// currents only).
    pub voltage_v: f64,
    /// Outbox messages published and not yet acknowledged, at most.
    pub window: usize,
    pub keep_alive: Duration,
    pub backoff: Backoff,
    /// How long a command handler may take before the link answers for it.
    pub command_timeout: Duration,
    /// How often the outbox is looked at without a wake (a missed wake costs at most this).
    pub outbox_poll: Duration,
    /// Largest MQTT packet either way (session records with cost lines can be large).
    pub max_packet_size: usize,
    /// Authorisation requests from the control loop, published on `P/auth/request` (None:
    /// nobody asks).
    pub auth_requests: Option<crate::tokens::AuthQueue>,
}

impl SyncOptions {
    pub fn from_config(cfg: &Config, started_at: DateTime<Utc>) -> Result<Self, SyncError> {
        let mqtt = cfg.mqtt.as_ref().ok_or(SyncError::NotConfigured)?;
        let (secure, host, port) = parse_url(&mqtt.url)?;
        let tls = if secure {
            Some(tls_config(
                mqtt.ca_file.as_deref(),
                mqtt.cert_file.as_deref(),
                mqtt.key_file.as_deref(),
            )?)
        } else {
            None
        };
        let credentials = match &mqtt.username {
            None => None,
            Some(username) => Some(Credentials {
                username: username.clone(),
                password: match &mqtt.password_file {
                    Some(path) => read_password(path)?,
                    None => Secret::new(""),
                },
            }),
        };
        Ok(SyncOptions {
            site_id: cfg.site.id.clone(),
            prefix: format!("{}/{}", mqtt.topic_prefix, cfg.site.id),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            started_at,
            host,
            port,
            client_id: mqtt.client_id.clone(),
            credentials,
            tls,
            telemetry_interval: mqtt.telemetry_interval,
            voltage_v: cfg.site.voltage_v,
            window: 100,
            keep_alive: Duration::from_secs(30),
            backoff: Backoff::default(),
            command_timeout: Duration::from_secs(5),
            outbox_poll: Duration::from_secs(1),
            max_packet_size: 1024 * 1024,
            auth_requests: None,
        })
    }

    /// Options for a plain connection to `host:port` with no credentials, for tests, the
    /// benchmark and tools; the other fields take the daemon's defaults.
    pub fn plain(
        site_id: &str,
        host: &str,
        port: u16,
        client_id: &str,
        started_at: DateTime<Utc>,
    ) -> Self {
        SyncOptions {
            site_id: site_id.to_owned(),
            prefix: format!("evsite/{site_id}"),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            started_at,
            host: host.to_owned(),
            port,
            client_id: client_id.to_owned(),
            credentials: None,
            tls: None,
            telemetry_interval: Duration::from_secs(10),
            voltage_v: 230.0,
            window: 100,
            keep_alive: Duration::from_secs(30),
            backoff: Backoff::default(),
            command_timeout: Duration::from_secs(5),
            outbox_poll: Duration::from_secs(1),
            max_packet_size: 1024 * 1024,
            auth_requests: None,
        }
    }

    pub fn topic(&self, leaf: &str) -> String {
        format!("{}/{leaf}", self.prefix)
    }

    /// rumqttc's options for one connection attempt.
    pub(crate) fn mqtt_options(&self) -> MqttOptions {
        let window = self.effective_window();
        let mut o = MqttOptions::new(self.client_id.clone(), self.host.clone(), self.port);
        // Whole seconds only (rumqttc refuses less than one).
        o.set_keep_alive(Duration::from_secs(self.keep_alive.as_secs().max(1)));
        // A clean session: after a reconnect the link re-sends every unacknowledged message
        // from the store itself, so nothing may be replayed from the previous session.
        o.set_clean_session(true);
        o.set_max_packet_size(self.max_packet_size, self.max_packet_size);
        // Room for the outbox window plus status, command replies and telemetry.
        let inflight = u16::try_from(window + EXTRA_INFLIGHT).unwrap_or(u16::MAX);
        o.set_inflight(inflight);
        o.set_request_channel_capacity(window + EXTRA_REQUESTS);
        o.set_last_will(LastWill::new(
            self.topic("status"),
            super::payloads::offline(),
            QoS::AtLeastOnce,
            true,
        ));
        if let Some(c) = &self.credentials {
            o.set_credentials(c.username.clone(), c.password.expose().to_owned());
        }
        if let Some(tls) = &self.tls {
            o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
                tls.clone(),
            )));
        }
        o
    }

    /// The window as used: at least 1, at most [`MAX_WINDOW`].
    pub fn effective_window(&self) -> usize {
        self.window.clamp(1, MAX_WINDOW)
    }
}

/// In-flight QoS 1 packets beyond the outbox window: status and command replies.
pub(crate) const EXTRA_INFLIGHT: usize = 64;
/// Request channel room beyond the window: the link never waits on the channel.
pub(crate) const EXTRA_REQUESTS: usize = 512;

/// `mqtt://host[:port]` or `mqtts://host[:port]` (an IPv6 host in brackets) into
/// (secure, host, port); the ports default to 1883 and 8883.
pub fn parse_url(url: &str) -> Result<(bool, String, u16), SyncError> {
    let bad = |reason| SyncError::Url {
        url: url.to_owned(),
        reason,
    };
    let (secure, rest) = if let Some(rest) = url.strip_prefix("mqtts://") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("mqtt://") {
        (false, rest)
    } else {
        return Err(bad("must start with mqtt:// or mqtts://"));
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('/') || rest.contains('@') {
        return Err(bad("must be scheme://host[:port] with no path or user"));
    }
    let default_port = if secure { 8883 } else { 1883 };
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
        match after.strip_prefix(':') {
            Some(p) => (host, Some(p)),
            None if after.is_empty() => (host, None),
            None => return Err(bad("junk after the IPv6 address")),
        }
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let port = match port {
        None => default_port,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| bad("the port must be a number from 1 to 65535"))?,
    };
    Ok((secure, host.to_owned(), port))
}

/// The password file's content without its trailing newline (as `echo` or an editor leaves);
/// an empty one is refused, as `check-config` refuses it.
pub fn read_password(path: &Path) -> Result<Secret, SyncError> {
    let bytes = read_checked("mqtt.password_file", path, Content::Secret)?;
    let raw = String::from_utf8_lossy(&bytes);
    Ok(Secret::new(raw.trim_end_matches(['\r', '\n'])))
}

/// A file read with the checks `check-config` makes ([`crate::config::files`]).
fn read_checked(key: &'static str, path: &Path, content: Content) -> Result<Vec<u8>, SyncError> {
    files::read(path, content, &Reader::Current)
        .map(|c| c.bytes)
        .map_err(|source| SyncError::File { key, source })
}

fn certs(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, SyncError> {
    let pem = read_checked(what, path, Content::Certificates)?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(SyncError::Pem {
            what,
            path: path.to_owned(),
            expected: "PEM certificate",
        });
    }
    Ok(certs)
}

/// rustls with the ring provider: the CA file's roots (else the system's), and the client
/// certificate and key for mutual TLS when both are set.
pub fn tls_config(
    ca_file: Option<&Path>,
    cert_file: Option<&Path>,
    key_file: Option<&Path>,
) -> Result<Arc<ClientConfig>, SyncError> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            for cert in certs("mqtt.ca_file", path)? {
                roots.add(cert)?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _ignored) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(SyncError::NoRoots);
            }
        }
    }
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots);
    let config = match (cert_file, key_file) {
        (None, None) => builder.with_no_client_auth(),
        (Some(cert), Some(key)) => {
            let chain = certs("mqtt.cert_file", cert)?;
            let pem = read_checked("mqtt.key_file", key, Content::PrivateKey)?;
            let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|_| SyncError::Pem {
                what: "mqtt.key_file",
                path: key.to_owned(),
                expected: "PEM private key",
            })?;
            builder.with_client_auth_cert(chain, key)?
        }
        _ => return Err(SyncError::HalfClientAuth),
    };
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("mqtt://broker.example").unwrap(),
            (false, "broker.example".into(), 1883)
        );
        assert_eq!(
            parse_url("mqtts://broker.example").unwrap(),
            (true, "broker.example".into(), 8883)
        );
        assert_eq!(
            parse_url("mqtt://127.0.0.1:1884/").unwrap(),
            (false, "127.0.0.1".into(), 1884)
        );
        assert_eq!(
            parse_url("mqtts://[::1]:9000").unwrap(),
            (true, "::1".into(), 9000)
        );
        for bad in [
            "http://x",
            "mqtt://",
            "mqtt://:1883",
            "mqtt://h:0",
            "mqtt://h:99999",
            "mqtt://h/path",
            "mqtt://u@h",
            "mqtt://[::1",
        ] {
            assert!(parse_url(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn the_password_never_shows_in_debug() {
        let c = Credentials {
            username: "site".into(),
            password: Secret::new("hunter2"),
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("site"));
    }

    #[test]
    fn password_file_loses_only_its_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "  s3cret \n").unwrap();
        assert_eq!(read_password(&path).unwrap().expose(), "  s3cret ");
        assert!(read_password(&dir.path().join("missing")).is_err());
    }
}
