//! The local database (sled): sessions, samples, alerts and the outbox, flushed before anything counts as stored.
