//! The authorisation requests on their way from the control loop to the cloud link
//! (`P/auth/request`). The loop never waits: a request is queued and the link is woken. A
//! request that cannot go out (the link down) is dropped — the loop sees the link down and
//! lets the list and the cache decide — so the queue is bounded, oldest dropped first.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;

use super::AuthRequest;

/// Most requests waiting at once (far more than chargers a site has).
pub const MAX_QUEUED: usize = 256;

#[derive(Debug, Clone, Default)]
pub struct AuthQueue {
    waiting: Arc<Mutex<VecDeque<AuthRequest>>>,
    wake: Arc<Notify>,
}

impl AuthQueue {
    pub fn push(&self, r: AuthRequest) {
        {
            let mut q = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
            if q.len() >= MAX_QUEUED {
                q.pop_front();
            }
            q.push_back(r);
        }
        self.wake.notify_one();
    }

    /// Everything waiting, oldest first.
    pub fn take(&self) -> Vec<AuthRequest> {
        let mut q = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        q.drain(..).collect()
    }

    /// Resolves once a request was pushed since the last call.
    pub async fn notified(&self) {
        self.wake.notified().await;
    }
}
