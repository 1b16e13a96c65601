//! The clock's kinds, step detection through a steppable wall source, and trust.

use super::*;
use std::sync::Mutex;

fn t0() -> DateTime<Utc> {
    "2025-03-01T04:00:00Z".parse().unwrap()
}

/// A wall source that follows `tokio::time` (paused in these tests) plus a step the test sets,
/// as the system clock does when NTP steps it.
fn steppable() -> (TimeSource, Arc<Mutex<TimeDelta>>) {
    let start = Instant::now();
    let step = Arc::new(Mutex::new(TimeDelta::zero()));
    let s = step.clone();
    let source: TimeSource = Arc::new(move || {
        let mono = TimeDelta::from_std(Instant::now() - start).unwrap();
        t0() + mono + *s.lock().unwrap()
    });
    (source, step)
}

#[test]
fn a_following_clock_reads_its_source_and_never_goes_back() {
    let t0: DateTime<Utc> = "2026-12-03T17:00:00Z".parse().unwrap();
    let now = Arc::new(Mutex::new(t0));
    let src = now.clone();
    let clock = Clock::following(Arc::new(move || *src.lock().unwrap()));
    assert_eq!(clock.now(), t0);
    *now.lock().unwrap() = t0 + chrono::Duration::seconds(90);
    assert_eq!(clock.now(), t0 + chrono::Duration::seconds(90));
    assert!((clock.elapsed_s() - 90.0).abs() < 1e-9);
    *now.lock().unwrap() = t0 - chrono::Duration::seconds(5);
    assert_eq!(clock.now(), t0);
    assert_eq!(clock.elapsed_s(), 0.0);
    assert!(clock.trusted());
    assert_eq!(clock.take_view(), ClockView::default());
}

#[test]
fn the_step_watch_follows_drift_and_sees_jumps() {
    let mut w = StepWatch::default();
    // A slew of 100 ms a reading adds up to far more than the threshold: never a step.
    for i in 1..=200 {
        assert_eq!(w.observe(TimeDelta::milliseconds(100 * i)), None);
    }
    let at = TimeDelta::seconds(20);
    assert_eq!(
        w.observe(at + TimeDelta::seconds(6)),
        Some(TimeDelta::seconds(6))
    );
    assert_eq!(
        w.observe(at - TimeDelta::seconds(1)),
        Some(TimeDelta::seconds(-7))
    );
    assert_eq!(w.observe(at - TimeDelta::seconds(1)), None);
}

#[tokio::test(start_paused = true)]
async fn a_live_clock_reads_the_wall_clock_as_it_is_now_and_sees_a_step_once() {
    let (source, step) = steppable();
    let clock = Clock::live(source);
    assert!(!clock.trusted());
    tokio::time::advance(std::time::Duration::from_secs(10)).await;
    assert_eq!(clock.now(), t0() + TimeDelta::seconds(10));
    assert_eq!(clock.take_view().step_ms, None);

    // NTP steps the clock 646 days forward.
    let jump = TimeDelta::days(646);
    *step.lock().unwrap() = jump;
    tokio::time::advance(std::time::Duration::from_secs(1)).await;
    assert_eq!(clock.now(), t0() + TimeDelta::seconds(11) + jump);
    // Durations stay monotonic: 11 s, not 646 days.
    assert!((clock.elapsed_s() - 11.0).abs() < 1e-9);
    let view = clock.take_view();
    assert_eq!(view.step(), Some(jump));
    assert_eq!(view.steps, 1);
    // Taken once: the next cycle sees no step, but the count stays.
    let view = clock.take_view();
    assert_eq!(view.step_ms, None);
    assert_eq!(view.steps, 1);

    // A step back is a step too; a clone shares what the original saw.
    let other = clock.clone();
    *step.lock().unwrap() = jump - TimeDelta::seconds(30);
    assert_eq!(
        other.now(),
        t0() + TimeDelta::seconds(11) + jump - TimeDelta::seconds(30)
    );
    let view = clock.take_view();
    assert_eq!(view.step(), Some(TimeDelta::seconds(-30)));
    assert_eq!(view.steps, 2);
}

#[tokio::test(start_paused = true)]
async fn a_small_error_is_not_a_step() {
    let (source, step) = steppable();
    let clock = Clock::live(source);
    *step.lock().unwrap() = TimeDelta::seconds(4);
    assert_eq!(clock.take_view().steps, 0);
    assert_eq!(clock.now(), t0() + TimeDelta::seconds(4));
}

#[tokio::test(start_paused = true)]
async fn untrusted_time_is_said_after_a_while_and_trust_ends_it() {
    let (source, _) = steppable();
    let clock = Clock::live(source);
    tokio::time::advance(UNSYNCED_ALERT_AFTER - std::time::Duration::from_secs(1)).await;
    let view = clock.take_view();
    assert!(!view.trusted);
    assert!(!view.unsynced());
    tokio::time::advance(std::time::Duration::from_secs(1)).await;
    assert!(clock.take_view().unsynced());
    clock.set_trusted(TrustSource::Kernel);
    let view = clock.take_view();
    assert!(view.trusted && !view.unsynced());
    assert_eq!(view.trusted_by, Some(TrustSource::Kernel));
    assert_eq!(view.untrusted_s, 0);
    // The first source to vouch is the one kept.
    clock.set_trusted(TrustSource::SyncFile);
    assert_eq!(clock.take_view().trusted_by, Some(TrustSource::Kernel));
}

#[tokio::test]
async fn trust_comes_from_the_installer_or_the_sync_file() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("synchronized");
    let mut settings = TrustSettings {
        trusted: false,
        sync_file: flag.clone(),
        kernel: false,
    };
    assert_eq!(trust::check(&settings).await, None);
    std::fs::write(&flag, b"").unwrap();
    assert_eq!(trust::check(&settings).await, Some(TrustSource::SyncFile));
    std::fs::remove_file(&flag).unwrap();
    settings.trusted = true;
    assert_eq!(trust::check(&settings).await, Some(TrustSource::Installer));

    // The watcher marks a live clock trusted as soon as a source vouches.
    settings.trusted = false;
    let clock = Clock::system();
    let watcher = tokio::spawn(trust::watch(clock.clone(), settings));
    assert!(!clock.trusted());
    std::fs::write(&flag, b"").unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), watcher)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(clock.take_view().trusted_by, Some(TrustSource::SyncFile));
}
