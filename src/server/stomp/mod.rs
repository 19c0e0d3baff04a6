//! STOMP 1.2 (and 1.0, 1.1) on the engine. See ARCHITECTURE.md, "STOMP on the engine".

pub(crate) mod codec;
