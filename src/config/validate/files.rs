//! The files a config names (`mqtt.password_file`, `mqtt.ca_file`, `mqtt.cert_file`,
//! `mqtt.key_file`, `api.token_file`): each must exist, be readable by the service user and
//! parse — a PEM that holds no PEM, an empty password or token, is an error at its key. A
//! secret that every user of the machine may read is a warning.
//!
//! "The service user" is the user the daemon runs as: `evsite` (the unit's `User=`), or the
//! user named by `EVSITE_SERVICE_USER`. `check-config` often runs as root, who can read
//! anything, so when that user exists its access is worked out from each file's owner, group
//! and mode (and every directory above it) against the user's uid and groups. When it does
//! not exist (a development machine), the file is simply read as the current user.
//!
//! The same reading ([`read`]) serves the cloud link at start and on every retry, so a file
//! `check-config` accepts is one the link can use.

use std::ffi::CString;
use std::fmt;
use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::error::KeyPath;
use crate::config::raw::RawConfig;
use crate::config::report::Reporter;

/// The user the daemon runs as, unless `EVSITE_SERVICE_USER` names another.
pub const SERVICE_USER: &str = "evsite";
/// Names the service user the file checks are made for (tests, or a unit with another
/// `User=`).
pub const SERVICE_USER_ENV: &str = "EVSITE_SERVICE_USER";

/// Which of the named files a validation checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FileScope {
    /// None: the values only (tools that read the config for a path or a port).
    #[default]
    None,
    /// All but the cloud link's: `run` starts the site without them, and the link checks
    /// its own files, raising `cloud_link_down` until they are right.
    Site,
    /// Every one (`check-config`).
    All,
}

/// What a file must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    /// A password or token: text, not empty once its trailing newline is gone.
    Secret,
    /// One or more PEM certificates.
    Certificates,
    /// A PEM private key.
    PrivateKey,
    /// UTF-8 text holding personal data (the token list): parsed by its reader.
    PersonalData,
}

impl Content {
    /// Whether others reading it is a leak worth a warning.
    fn is_secret(self) -> bool {
        matches!(
            self,
            Content::Secret | Content::PrivateKey | Content::PersonalData
        )
    }
}

/// Why a named file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{}: no such file", .0.display())]
    Missing(PathBuf),
    #[error("{}: is a directory, not a file", .0.display())]
    NotFile(PathBuf),
    #[error("{}: not readable by the service user {user} ({why})", path.display())]
    NotReadable {
        path: PathBuf,
        user: String,
        why: String,
    },
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: is empty", .0.display())]
    Empty(PathBuf),
    #[error("{}: is not UTF-8 text", .0.display())]
    NotText(PathBuf),
    #[error("{}: holds no PEM {expected}", path.display())]
    NotPem {
        path: PathBuf,
        expected: &'static str,
    },
}

/// Who must be able to read the files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reader {
    /// A user of this machine, by uid and every group it is in.
    User {
        name: String,
        uid: u32,
        gids: Vec<u32>,
    },
    /// Whoever runs this process (the service user does not exist here).
    Current,
}

impl Reader {
    /// The service user ([`SERVICE_USER`] or `$EVSITE_SERVICE_USER`) when it exists, else
    /// the current user.
    pub fn service() -> Reader {
        let name = std::env::var(SERVICE_USER_ENV)
            .ok()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| SERVICE_USER.to_owned());
        Reader::user(&name).unwrap_or(Reader::Current)
    }

    /// `name`, when the system knows it.
    pub fn user(name: &str) -> Option<Reader> {
        let user = nix::unistd::User::from_name(name).ok()??;
        let cname = CString::new(name).ok()?;
        let gids = nix::unistd::getgrouplist(&cname, user.gid)
            .map(|g| g.into_iter().map(|g| g.as_raw()).collect())
            .unwrap_or_else(|_| vec![user.gid.as_raw()]);
        Some(Reader::User {
            name: name.to_owned(),
            uid: user.uid.as_raw(),
            gids,
        })
    }

    /// Why this reader cannot open `path` for reading, judged from owner, group and mode of
    /// the file and the search permission of every directory above it.
    fn denied(&self, path: &Path, meta: &std::fs::Metadata) -> Option<String> {
        let Reader::User { uid, gids, .. } = self else {
            return None;
        };
        if *uid == 0 {
            return None;
        }
        let allowed = |m: &std::fs::Metadata, bits: u32| {
            let mode = m.mode();
            if m.uid() == *uid {
                mode & (bits << 6) != 0
            } else if gids.contains(&m.gid()) {
                mode & (bits << 3) != 0
            } else {
                mode & bits != 0
            }
        };
        let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
        for dir in abs.ancestors().skip(1) {
            if let Ok(m) = std::fs::metadata(dir) {
                if !allowed(&m, 0o1) {
                    return Some(format!(
                        "directory {} is {}, owner {}:{}",
                        dir.display(),
                        Mode(m.mode()),
                        m.uid(),
                        m.gid()
                    ));
                }
            }
        }
        (!allowed(meta, 0o4)).then(|| {
            format!(
                "mode {}, owner {}:{}",
                Mode(meta.mode()),
                meta.uid(),
                meta.gid()
            )
        })
    }

    fn name(&self) -> String {
        match self {
            Reader::User { name, .. } => name.clone(),
            Reader::Current => "(the current user)".to_owned(),
        }
    }
}

/// A mode's permission bits as `ls -l` prints them after the type (`rw-r-----`), with the
/// octal number.
struct Mode(u32);

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bits = self.0 & 0o777;
        let mut s = String::with_capacity(9);
        for shift in [6, 3, 0] {
            let b = (bits >> shift) & 0o7;
            s.push(if b & 4 != 0 { 'r' } else { '-' });
            s.push(if b & 2 != 0 { 'w' } else { '-' });
            s.push(if b & 1 != 0 { 'x' } else { '-' });
        }
        write!(f, "{bits:04o} ({s})")
    }
}

/// A file read and checked: its bytes, and a warning about its permissions when it is a
/// secret anyone may read.
#[derive(Debug)]
pub struct Checked {
    pub bytes: Vec<u8>,
    pub warning: Option<String>,
}

/// Reads `path` as `reader` would and checks it holds `content`.
pub fn read(path: &Path, content: Content, reader: &Reader) -> Result<Checked, FileError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Err(FileError::Missing(path.into())),
        Err(source) => {
            return Err(FileError::Read {
                path: path.into(),
                source,
            })
        }
    };
    if meta.is_dir() {
        return Err(FileError::NotFile(path.into()));
    }
    if let Some(why) = reader.denied(path, &meta) {
        return Err(FileError::NotReadable {
            path: path.into(),
            user: reader.name(),
            why,
        });
    }
    let bytes = std::fs::read(path).map_err(|source| match source.kind() {
        ErrorKind::PermissionDenied => FileError::NotReadable {
            path: path.into(),
            user: reader.name(),
            why: source.to_string(),
        },
        _ => FileError::Read {
            path: path.into(),
            source,
        },
    })?;
    parse(path, content, &bytes)?;
    let warning = (content.is_secret() && meta.mode() & 0o004 != 0).then(|| {
        format!(
            "{}: readable by every user of this machine (mode {}): {} should be mode 0640 (owner root, group evsite) or 0600 (owner evsite)",
            path.display(),
            Mode(meta.mode()),
            if content == Content::PersonalData {
                "personal data"
            } else {
                "a secret"
            }
        )
    });
    Ok(Checked { bytes, warning })
}

fn parse(path: &Path, content: Content, bytes: &[u8]) -> Result<(), FileError> {
    match content {
        Content::Secret => {
            let text = std::str::from_utf8(bytes).map_err(|_| FileError::NotText(path.into()))?;
            if text.trim_end_matches(['\r', '\n']).is_empty() {
                return Err(FileError::Empty(path.into()));
            }
        }
        Content::PersonalData => {
            std::str::from_utf8(bytes).map_err(|_| FileError::NotText(path.into()))?;
        }
        Content::Certificates => {
            let any = CertificateDer::pem_slice_iter(bytes).any(|c| c.is_ok());
            if !any {
                return Err(FileError::NotPem {
                    path: path.into(),
                    expected: "certificate",
                });
            }
        }
        Content::PrivateKey => {
            if PrivateKeyDer::from_pem_slice(bytes).is_err() {
                return Err(FileError::NotPem {
                    path: path.into(),
                    expected: "private key",
                });
            }
        }
    }
    Ok(())
}

/// Checks every file `raw` names within the reporter's [`FileScope`], reporting each problem
/// at its key.
pub fn check(raw: &RawConfig, rep: &mut Reporter<'_>) {
    let scope = rep.file_scope();
    if scope == FileScope::None {
        return;
    }
    let reader = Reader::service();
    let one = |rep: &mut Reporter<'_>, path: KeyPath, file: &Option<String>, content| {
        let Some(file) = file.as_deref().filter(|f| !f.trim().is_empty()) else {
            return true;
        };
        match read(Path::new(file), content, &reader) {
            Ok(checked) => {
                if let Some(w) = checked.warning {
                    rep.warn(&path, w);
                }
                true
            }
            Err(e) => {
                rep.error(&path, e.to_string());
                false
            }
        }
    };
    let api = KeyPath::root("api");
    one(
        rep,
        api.key("token_file"),
        &raw.api.token_file,
        Content::Secret,
    );
    let Some(mqtt) = raw.mqtt.as_ref().filter(|_| scope == FileScope::All) else {
        return;
    };
    let p = KeyPath::root("mqtt");
    // The password is sent only with a username, but a named file is still read at start.
    let files_ok = [
        one(
            rep,
            p.key("password_file"),
            &mqtt.password_file,
            Content::Secret,
        ),
        one(rep, p.key("ca_file"), &mqtt.ca_file, Content::Certificates),
        one(
            rep,
            p.key("cert_file"),
            &mqtt.cert_file,
            Content::Certificates,
        ),
        one(rep, p.key("key_file"), &mqtt.key_file, Content::PrivateKey),
    ]
    .iter()
    .all(|ok| *ok);
    // Each file parses; together they must also make a TLS set-up (a key that belongs to
    // the certificate, a CA rustls accepts).
    if files_ok
        && mqtt.url.starts_with("mqtts://")
        && (mqtt.ca_file.is_some() || mqtt.key_file.is_some())
    {
        if let Err(e) = crate::sync::tls_config(
            as_path(&mqtt.ca_file),
            as_path(&mqtt.cert_file),
            as_path(&mqtt.key_file),
        ) {
            let key = if mqtt.key_file.is_some() {
                "key_file"
            } else {
                "ca_file"
            };
            rep.error(&p.key(key), format!("the TLS set-up fails: {e}"));
        }
    }
}

fn as_path(f: &Option<String>) -> Option<&Path> {
    f.as_deref().map(Path::new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn write(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn a_secret_must_exist_and_hold_something() {
        let dir = tempfile::tempdir().unwrap();
        let empty = write(dir.path(), "empty", "\n", 0o600);
        let good = write(dir.path(), "pw", "s3cret\n", 0o600);
        let r = Reader::Current;
        assert!(matches!(
            read(&empty, Content::Secret, &r),
            Err(FileError::Empty(_))
        ));
        assert!(matches!(
            read(&dir.path().join("nope"), Content::Secret, &r),
            Err(FileError::Missing(_))
        ));
        assert!(matches!(
            read(dir.path(), Content::Secret, &r),
            Err(FileError::NotFile(_))
        ));
        let ok = read(&good, Content::Secret, &r).unwrap();
        assert_eq!(ok.bytes, b"s3cret\n");
        assert!(ok.warning.is_none());
    }

    #[test]
    fn a_secret_anyone_may_read_is_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let open = write(dir.path(), "pw", "s3cret", 0o644);
        let w = read(&open, Content::Secret, &Reader::Current)
            .unwrap()
            .warning;
        assert!(w.is_some_and(|w| w.contains("0644 (rw-r--r--)")));
    }

    #[test]
    fn text_that_is_not_pem_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let junk = write(dir.path(), "ca.pem", "not a certificate\n", 0o644);
        let e = read(&junk, Content::Certificates, &Reader::Current).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("{}: holds no PEM certificate", junk.display())
        );
        assert!(read(&junk, Content::PrivateKey, &Reader::Current).is_err());
    }

    #[test]
    fn another_user_is_judged_by_owner_group_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let me = nix::unistd::getuid().as_raw();
        let other = Reader::User {
            name: "other".into(),
            uid: me + 4242,
            gids: vec![4242],
        };
        let private = write(dir.path(), "pw", "s3cret", 0o600);
        let e = read(&private, Content::Secret, &other).unwrap_err();
        assert!(
            e.to_string()
                .contains("not readable by the service user other (mode 0600"),
            "{e}"
        );
        let shared = write(dir.path(), "pw2", "s3cret", 0o604);
        assert!(read(&shared, Content::Secret, &other).is_ok());
        // A readable file in a directory the user cannot enter is still out of reach.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let e = read(&shared, Content::Secret, &other).unwrap_err();
        assert!(e.to_string().contains("directory"), "{e}");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}
