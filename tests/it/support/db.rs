//! sled's file lock, as a test that reopens a database in this process meets it.

use std::path::Path;

/// sled closes its data file, and so drops its lock, on background threads some time after
/// the last handle is dropped (its I/O thread pool is one per process, shared by every test
/// in it): wait (bounded) for the lock itself, as the next opener will take it.
pub fn wait_released(path: &Path) {
    use fs2::FileExt;
    let file = std::fs::File::open(path.join("db")).expect("sled's data file");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while file.try_lock_exclusive().is_err() {
        assert!(std::time::Instant::now() < deadline, "sled kept its lock");
        std::thread::yield_now();
    }
    FileExt::unlock(&file).expect("unlocked");
}
