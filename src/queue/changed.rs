//! Waiting for a queue without a thread: a [`QueueChanged`] future completes once something
//! that can make a message visible happened after the future was created (a send, a topic
//! delivery, a visibility change to now, a message moved in, a FIFO group unblocked, the
//! queue's deletion). An async server long-polls with it: create the future, receive without
//! waiting, and if that found nothing await the future (or the time
//! [`crate::queue::Queue::next_visible_at_ms`] names, or the poll's deadline), then receive
//! again. The mechanism is [`crate::signal`], shared with stream shards.

pub use crate::signal::{ChangeSignal, Changed as QueueChanged};
