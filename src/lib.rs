//! # weir
//!
//! A durable, embedded message-log storage engine: SQS-style queues, SNS-style topics and
//! Kinesis-style streams inside one process, over one append-only segmented log, and
//! Firehose-style delivery streams on top of them.
//!
//! ```no_run
//! use weir::{Engine, Options};
//! let engine = Engine::open("./weir-data", Options::default())?;
//! engine.create_stream("clicks", 2, None)?;
//! let put = engine.stream("clicks")?.put(b"user-1", b"hello")?;
//! println!("shard {} seq {}", put.shard, put.seq);
//! # Ok::<(), weir::Error>(())
//! ```
#![warn(missing_docs)]

pub mod clock;
pub mod engine;
pub mod error;
pub mod firehose;
pub mod format;
pub mod inspect;
pub mod log;
pub mod names;
pub mod policy;
pub mod queue;
#[cfg(feature = "server")]
pub mod server;
pub mod signal;
pub mod stream;
pub mod text;
pub mod topic;

pub use clock::{Clock, ManualClock, SystemClock};
pub use engine::encryption::{generate_key_line, KeySource, RekeyReport};
pub use engine::{Durability, Engine, Options};
pub use error::{Error, Result};
pub use log::durable::Durable;
