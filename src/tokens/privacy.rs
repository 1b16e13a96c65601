//! Tokens, user names and vehicle ids are personal data. With `[auth] publish_identity =
//! "hashed"`, what leaves the site for accounting (`P/sessions`) carries them only as a salted
//! hash: `sha256:` and the first 16 bytes, in hex, of SHA-256 over the site's salt and the
//! value. The salt is drawn once per site and kept in its database, so one token gives one
//! hash at one site, for as long as the database lives — the cloud can still count a driver's
//! sessions — and a hash cannot be looked up from a list of card numbers without the salt.
//!
//! The store keeps the plain values: the site's own reports, statements and `evsite forget`
//! work on them. The authorisation request (`P/auth/request`) carries the token as presented,
//! since the cloud must see it to decide.

use serde::{Deserialize, Serialize};

use crate::sessions::machine::SessionRecord;

/// `[auth] publish_identity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PublishIdentity {
    /// As stored.
    #[default]
    Plain,
    /// `token`, `user` and `ev_id` as salted hashes.
    Hashed,
}

/// How session messages carry identities.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Publish {
    #[default]
    Plain,
    Hashed(Hasher),
    /// Hashed was asked for but no salt could be kept: `token`, `user` and `ev_id` are left
    /// out.
    Withheld,
}

/// The site's salted hash.
#[derive(Clone, PartialEq, Eq)]
pub struct Hasher {
    salt: Vec<u8>,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hasher { salt: <hidden> }")
    }
}

impl Hasher {
    pub fn new(salt: Vec<u8>) -> Self {
        Hasher { salt }
    }

    /// `sha256:` and 32 hex digits. A token is hashed as the list compares it
    /// ([`super::normalise`]: case and padding do not change its hash).
    pub fn hash(&self, value: &str) -> String {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(&self.salt);
        ctx.update(value.as_bytes());
        let digest = ctx.finish();
        let hex: String = digest.as_ref()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("sha256:{hex}")
    }
}

impl Publish {
    /// A session record as its message's `data`.
    pub fn session(&self, record: &SessionRecord) -> serde_json::Value {
        let mut value = serde_json::to_value(record).unwrap_or_default();
        let h = match self {
            Publish::Plain => return value,
            Publish::Hashed(h) => h,
            Publish::Withheld => {
                if let Some(obj) = value.as_object_mut() {
                    for key in ["token", "user", "ev_id"] {
                        obj.remove(key);
                    }
                }
                return value;
            }
        };
        if let Some(obj) = value.as_object_mut() {
            for (key, normalise) in [("token", true), ("user", false), ("ev_id", true)] {
                if let Some(serde_json::Value::String(v)) = obj.get(key) {
                    let v = if normalise {
                        super::normalise(v)
                    } else {
                        v.clone()
                    };
                    obj.insert(key.into(), serde_json::Value::String(h.hash(&v)));
                }
            }
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    fn record(token: &str, user: &str) -> SessionRecord {
        let t: DateTime<Utc> = "2026-11-21T09:00:00Z".parse().expect("time");
        let mut r = SessionRecord::new("s-1".into(), "cp-1".into(), t);
        r.identity.token = Some(token.into());
        r.identity.user = Some(user.into());
        r.identity.group = Some("residents".into());
        r.ev_id = Some("EVCC0001".into());
        r
    }

    #[test]
    fn hashed_messages_hide_the_token_user_and_vehicle_id_and_keep_the_rest() {
        let h = Publish::Hashed(Hasher::new(b"site salt".to_vec()));
        let r = record("04a1b2c3", "Anna Berg");
        let v = h.session(&r);
        let text = v.to_string();
        for secret in ["04a1b2c3", "04A1B2C3", "Anna", "EVCC0001"] {
            assert!(!text.contains(secret), "{secret} leaks: {text}");
        }
        for key in ["token", "user", "ev_id"] {
            let s = v[key].as_str().expect(key);
            assert!(s.starts_with("sha256:") && s.len() == 7 + 32, "{key}: {s}");
        }
        assert_eq!(v["group"], "residents");
        assert_eq!(v["session_id"], "s-1");
        // The plain form is the record as is.
        assert_eq!(
            Publish::Plain.session(&r),
            serde_json::to_value(&r).expect("json")
        );
    }

    #[test]
    fn one_token_gives_one_hash_per_salt_whatever_its_case_or_padding() {
        let a = Publish::Hashed(Hasher::new(b"salt a".to_vec()));
        let b = Publish::Hashed(Hasher::new(b"salt b".to_vec()));
        let of = |p: &Publish, t: &str| p.session(&record(t, "U"))["token"].clone();
        assert_eq!(of(&a, "04a1b2c3"), of(&a, " 04A1B2C3\0"));
        assert_ne!(of(&a, "04A1B2C3"), of(&a, "04A1B2C4"));
        assert_ne!(
            of(&a, "04A1B2C3"),
            of(&b, "04A1B2C3"),
            "another site, another hash"
        );
    }

    #[test]
    fn the_hash_is_sha256_of_salt_and_value() {
        // SHA-256("abc") = ba7816bf 8f01cfea 414140de 5dae2223 ...
        assert_eq!(
            Hasher::new(b"a".to_vec()).hash("bc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223"
        );
        assert!(!format!("{:?}", Hasher::new(b"secret".to_vec())).contains("secret"));
    }
}
