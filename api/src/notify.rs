//! [`CommitNotifier`]: how the node tells waiting API requests that a block was committed.
//!
//! It holds only the newest committed height in a `tokio::sync::watch` channel: a waiter does
//! not need every height, only a wake-up after which it looks the transaction up again, and a
//! watch channel never queues, so a slow waiter cannot make it grow.

use std::sync::Arc;

use tokio::sync::watch;

/// Cheap to clone; every clone notifies the same waiters.
#[derive(Clone)]
pub struct CommitNotifier {
    sender: Arc<watch::Sender<u64>>,
}

impl CommitNotifier {
    /// Starts at `height`, the store's tip (0 before genesis).
    pub fn new(height: u64) -> Self {
        Self { sender: Arc::new(watch::Sender::new(height)) }
    }

    /// Called by the node after a block at `height` is durably stored. Heights only move
    /// forward: an older or repeated height wakes nobody.
    pub fn notify(&self, height: u64) {
        self.sender.send_if_modified(|current| {
            if height > *current {
                *current = height;
                true
            } else {
                false
            }
        });
    }

    /// A receiver that sees the current height as already seen, so its next `changed()` resolves
    /// at the next commit. Subscribe before looking something up, so no commit falls in between.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.sender.subscribe()
    }

    /// The newest height notified.
    pub fn height(&self) -> u64 {
        *self.sender.borrow()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn waiter_wakes_on_a_newer_height_only() {
        let n = CommitNotifier::new(3);
        let mut rx = n.subscribe();
        n.notify(3);
        n.notify(2);
        assert!(tokio::time::timeout(Duration::from_millis(20), rx.changed()).await.is_err());
        n.notify(4);
        tokio::time::timeout(Duration::from_secs(5), rx.changed()).await.unwrap().unwrap();
        assert_eq!(*rx.borrow_and_update(), 4);
        assert_eq!(n.height(), 4);
    }
}
