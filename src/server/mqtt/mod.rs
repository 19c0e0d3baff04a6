//! MQTT 3.1.1 and 5 (devices, IoT) on the engine. See ARCHITECTURE.md, "MQTT on the engine".

pub(crate) mod codec;
pub(crate) mod properties;
pub(crate) mod reason;
pub(crate) mod topic;
