//! The site's salt for identities published as hashes (see [`crate::tokens::privacy`]):
//! drawn once, kept in `meta`, flushed before it is used, so a hash never changes while the
//! database lives.

use super::{Store, StoreError};
use crate::tokens::privacy::{Hasher, Publish, PublishIdentity};

const SALT_KEY: &[u8] = b"identity_salt";
const SALT_LEN: usize = 32;

impl Store {
    /// The site's salt, drawn and stored on first use.
    pub fn identity_salt(&self) -> Result<Vec<u8>, StoreError> {
        if let Some(s) = self.meta.get(SALT_KEY)? {
            return Ok(s.to_vec());
        }
        let fresh: [u8; SALT_LEN] = rand::random();
        // Two first uses at once agree on whichever was stored first.
        let salt =
            match self
                .meta
                .compare_and_swap(SALT_KEY, None as Option<&[u8]>, Some(&fresh[..]))?
            {
                Ok(()) => fresh.to_vec(),
                Err(e) => e
                    .current
                    .map(|c| c.to_vec())
                    .unwrap_or_else(|| fresh.to_vec()),
            };
        self.db.flush()?;
        Ok(salt)
    }

    /// How this site's session messages carry identities. Hashed without a readable salt is
    /// refused rather than published plain.
    pub fn publisher(&self, mode: PublishIdentity) -> Result<Publish, StoreError> {
        Ok(match mode {
            PublishIdentity::Plain => Publish::Plain,
            PublishIdentity::Hashed => Publish::Hashed(Hasher::new(self.identity_salt()?)),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::store::Store;

    #[test]
    fn the_salt_is_drawn_once_and_survives_a_reopen() {
        let dir = tempfile::tempdir().expect("dir");
        let first = {
            let (store, _) = Store::open(dir.path()).expect("open");
            let s = store.identity_salt().expect("salt");
            assert_eq!(store.identity_salt().expect("again"), s);
            s
        };
        assert_eq!(first.len(), 32);
        let (store, _) = Store::open(dir.path()).expect("reopen");
        assert_eq!(store.identity_salt().expect("after reopen"), first);
        let other = tempfile::tempdir().expect("dir");
        let (b, _) = Store::open(other.path()).expect("open");
        assert_ne!(b.identity_salt().expect("salt"), first, "each site its own");
    }
}
