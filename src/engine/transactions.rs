//! A broker transaction's commit (STOMP's `COMMIT`): the messages it sent and the held
//! deliveries it acknowledged, written as one frame of the message log, so that after a crash
//! either every send and every acknowledgement of the transaction is there or none is.

use std::sync::Arc;

use crate::engine::{Delivery, Engine};
use crate::error::Result;
use crate::queue::Queue;

impl Engine {
    /// Writes `batch` (each message to its queues) and deletes the messages that `acks`'
    /// receipt handles name, all in one durable frame. A handle that no longer names its
    /// message as current (acknowledged already, or its queue purged) fails the whole commit
    /// before anything is written. Returns per message how many queues took it.
    pub fn commit(&self, batch: &[Delivery], acks: &[(Queue, String)]) -> Result<Vec<usize>> {
        let removals: Vec<_> = acks.iter().map(|(q, h)| (Arc::clone(&q.cell), h.as_str())).collect();
        self.inner.queues.deliver_and_remove(&Self::items(batch), &removals)
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::Delivery;
    use crate::queue::store::BrokerMessage;
    use crate::queue::QueueConfig;
    use crate::{Engine, Options};

    fn message(body: &'static [u8]) -> BrokerMessage {
        BrokerMessage { body: bytes::Bytes::from_static(body), ..Default::default() }
    }

    #[test]
    fn a_commit_sends_and_acknowledges_together_and_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let engine = Engine::open(dir.path(), Options::default()).unwrap();
            engine.create_queue("in", QueueConfig::default()).unwrap();
            engine.create_queue("out", QueueConfig::default()).unwrap();
            let (input, output) = (engine.queue("in").unwrap(), engine.queue("out").unwrap());
            assert!(input.send_broker(message(b"a")).unwrap() && input.send_broker(message(b"b")).unwrap());
            let held = input.receive_held(2).unwrap();
            assert_eq!(held.len(), 2);
            let acks = vec![(input.clone(), held[0].receipt_handle.clone())];
            let batch = [Delivery { queues: vec![output.clone()], message: message(b"sent") }];
            assert_eq!(engine.commit(&batch, &acks).unwrap(), vec![1]);
            // The same acknowledgement again names no current message: nothing is written.
            let again = [Delivery { queues: vec![output.clone()], message: message(b"twice") }];
            assert!(engine.commit(&again, &acks).is_err());
            assert_eq!(output.ready_and_in_flight(), (1, 0));
            // "b" stays held; the engine closes without acknowledging it.
        }
        let engine = Engine::open(dir.path(), Options::default()).unwrap();
        let (input, output) = (engine.queue("in").unwrap(), engine.queue("out").unwrap());
        let bodies = |q: &crate::queue::Queue| -> Vec<Vec<u8>> {
            q.receive_held(10).unwrap().into_iter().map(|m| m.body.to_vec()).collect()
        };
        assert_eq!(bodies(&input), vec![b"b".to_vec()], "the acknowledged message is gone, the held one back");
        assert_eq!(bodies(&output), vec![b"sent".to_vec()]);
    }
}
