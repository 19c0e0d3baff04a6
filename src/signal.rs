//! Waiting without a thread: a [`ChangeSignal`] is a counter of changes with the wakers of the
//! [`Changed`] futures waiting for the next one. A future completes once something changed
//! after it was created. An async caller (the server's long polls and event streams) creates
//! the future, looks without waiting, and if that found nothing awaits the future (or a timer),
//! then looks again: nothing that happens in between is missed. Only `std` is used: wakers
//! registered per future, no runtime in the engine.
//!
//! Queues signal what can make a message visible ([`crate::queue::Queue::changed`]); stream
//! shards signal new records, a reshard that closed them, and the stream's deletion
//! ([`crate::stream::Shard::changed`]).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use parking_lot::Mutex;

/// One object's signal: a counter of changes and the wakers of the futures waiting for the next.
#[derive(Debug, Default)]
pub struct ChangeSignal {
    /// Bumped by every change. A future completes once it differs from what it saw.
    epoch: AtomicU64,
    /// Set once the object is gone: every future completes.
    closed: AtomicBool,
    /// How many wakers are registered: lets a change skip the lock when nobody waits (sends
    /// are hot).
    waiting: AtomicUsize,
    wakers: Mutex<HashMap<u64, Waker>>,
    next_id: AtomicU64,
}

impl ChangeSignal {
    /// A change happened: every waiting future completes.
    pub fn notify(&self) {
        // SeqCst with the load of `waiting` here and the store and load in `poll`: either this
        // sees the waker registered, or the poll sees the new epoch (no lost wake-up).
        self.epoch.fetch_add(1, Ordering::SeqCst);
        if self.waiting.load(Ordering::SeqCst) == 0 {
            return;
        }
        let wakers: Vec<Waker> = {
            let mut map = self.wakers.lock();
            self.waiting.store(0, Ordering::SeqCst);
            map.drain().map(|(_, w)| w).collect()
        };
        for w in wakers {
            w.wake();
        }
    }

    /// The object is gone: every future, present and future, completes.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.notify();
    }

    /// A future for the next change after now.
    pub fn changed(self: &Arc<Self>) -> Changed {
        Changed {
            signal: Arc::clone(self),
            seen: self.epoch.load(Ordering::SeqCst),
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            registered: false,
        }
    }

    /// Wakers registered now (for tests: futures dropped must not leave theirs behind).
    pub fn registered(&self) -> usize {
        self.wakers.lock().len()
    }
}

/// Completes once its object changed (see the module documentation) after it was created.
/// Dropping it unregisters its waker.
#[derive(Debug)]
#[must_use = "a future does nothing unless awaited or polled"]
pub struct Changed {
    signal: Arc<ChangeSignal>,
    seen: u64,
    id: u64,
    registered: bool,
}

impl Changed {
    fn happened(&self) -> bool {
        self.signal.closed.load(Ordering::SeqCst) || self.signal.epoch.load(Ordering::SeqCst) != self.seen
    }
}

impl Future for Changed {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.happened() {
            return Poll::Ready(());
        }
        {
            let mut map = self.signal.wakers.lock();
            match map.get_mut(&self.id) {
                Some(w) if w.will_wake(cx.waker()) => {}
                Some(w) => w.clone_from(cx.waker()),
                None => {
                    map.insert(self.id, cx.waker().clone());
                }
            }
            self.signal.waiting.store(map.len(), Ordering::SeqCst);
        }
        self.registered = true;
        // A change between the first check and the registration would otherwise be missed.
        if self.happened() {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

impl Drop for Changed {
    fn drop(&mut self) {
        if self.registered {
            let mut map = self.signal.wakers.lock();
            map.remove(&self.id);
            self.signal.waiting.store(map.len(), Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    use super::*;

    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn poll(f: &mut Changed, waker: &Waker) -> Poll<()> {
        Pin::new(f).poll(&mut Context::from_waker(waker))
    }

    #[test]
    fn a_future_completes_on_the_first_change_after_its_creation_and_wakes_its_waker_once() {
        let signal = Arc::new(ChangeSignal::default());
        signal.notify(); // before: does not count
        let counter = Arc::new(Counter(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&counter));
        let mut f = signal.changed();
        assert_eq!(poll(&mut f, &waker), Poll::Pending);
        assert_eq!(poll(&mut f, &waker), Poll::Pending, "polled again: still one waker");
        assert_eq!(signal.registered(), 1);
        signal.notify();
        assert_eq!(counter.0.load(Ordering::SeqCst), 1);
        assert_eq!(poll(&mut f, &waker), Poll::Ready(()));
        signal.notify();
        assert_eq!(counter.0.load(Ordering::SeqCst), 1, "a woken waker is not woken again");
        // A change before the first poll completes it at once, without a waker.
        let mut g = signal.changed();
        signal.notify();
        assert_eq!(poll(&mut g, &waker), Poll::Ready(()));
    }

    #[test]
    fn dropped_futures_leave_no_waker_and_close_completes_everything() {
        let signal = Arc::new(ChangeSignal::default());
        let waker = Waker::from(Arc::new(Counter(AtomicUsize::new(0))));
        let mut futures: Vec<Changed> = (0..100).map(|_| signal.changed()).collect();
        for f in &mut futures {
            assert_eq!(poll(f, &waker), Poll::Pending);
        }
        assert_eq!(signal.registered(), 100);
        futures.truncate(10);
        assert_eq!(signal.registered(), 10, "a timed-out long poll takes its waker with it");
        signal.close();
        for f in &mut futures {
            assert_eq!(poll(f, &waker), Poll::Ready(()));
        }
        assert_eq!(poll(&mut signal.changed(), &waker), Poll::Ready(()), "after close, at once");
    }

    /// Notifications racing with polls from another thread are never lost: each round, one
    /// thread notifies while the other registers, and the future must complete.
    #[test]
    fn a_change_racing_with_the_registration_is_not_lost() {
        for _ in 0..2000 {
            let signal = Arc::new(ChangeSignal::default());
            let mut f = signal.changed();
            let other = Arc::clone(&signal);
            let t = std::thread::spawn(move || other.notify());
            let counter = Arc::new(Counter(AtomicUsize::new(0)));
            let waker = Waker::from(Arc::clone(&counter));
            let first = poll(&mut f, &waker);
            t.join().expect("notifier");
            if first == Poll::Pending {
                assert_eq!(counter.0.load(Ordering::SeqCst), 1, "registered before the change: woken");
            }
            assert_eq!(poll(&mut f, &waker), Poll::Ready(()));
        }
    }
}
