//! The in-flight window: which outbox messages are out, and which seq each packet id stands
//! for. rumqttc gives no per-publish handle; it announces `Outgoing::Publish(pkid)` in the
//! order requests were handed to it and `Incoming::PubAck(pkid)` when the broker has one, so
//! a FIFO of what was handed over, matched against the outgoing events, maps ids to seqs.
//! Pure: the link feeds it events and asks it what to send.

use std::collections::{HashMap, VecDeque};

/// What one publish handed to the client was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    Outbox(u64),
    Status,
    Reply,
    /// QoS 0: never acknowledged.
    Telemetry,
}

#[derive(Debug, Clone)]
pub struct Window {
    capacity: usize,
    /// Handed to the client, not yet seen going out.
    queued: VecDeque<Sent>,
    /// Gone out at QoS 1, waiting for the broker's PUBACK.
    by_pkid: HashMap<u16, Sent>,
    outbox_out: usize,
    /// A publish rumqttc held back because its packet id was still taken (`AwaitAck`); it
    /// takes no new requests until that one goes out, so the next `Publish` event is it.
    collided: Option<Sent>,
    /// The next seq to read from the store.
    cursor: u64,
}

impl Window {
    pub fn new(capacity: usize, cursor: u64) -> Self {
        Window {
            capacity,
            queued: VecDeque::new(),
            by_pkid: HashMap::new(),
            outbox_out: 0,
            collided: None,
            cursor,
        }
    }

    /// How many more outbox messages may go out now.
    pub fn room(&self) -> usize {
        self.capacity.saturating_sub(self.outbox_out)
    }

    /// Outbox messages out and not yet acknowledged.
    pub fn outbox_in_flight(&self) -> usize {
        self.outbox_out
    }

    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// A publish was handed to the client.
    pub fn handed_over(&mut self, sent: Sent) {
        if let Sent::Outbox(seq) = sent {
            self.outbox_out += 1;
            self.cursor = self.cursor.max(seq.saturating_add(1));
        }
        self.queued.push_back(sent);
    }

    /// `Outgoing::Publish(pkid)`: the oldest handed-over publish went out with this id
    /// (0 for QoS 0).
    pub fn went_out(&mut self, pkid: u16) {
        let Some(sent) = self.collided.take().or_else(|| self.queued.pop_front()) else {
            return;
        };
        if pkid == 0 {
            // QoS 0 never comes back; a QoS 1 publish always has an id.
            self.forget(sent);
            return;
        }
        if let Some(replaced) = self.by_pkid.insert(pkid, sent) {
            // An id reused before its ack: the older one will never be matched; the store
            // still holds it, so the next reconnect or resync sends it again.
            self.forget(replaced);
        }
    }

    /// `Outgoing::AwaitAck(pkid)`: the oldest handed-over publish waits for its id to free.
    pub fn held_back(&mut self) {
        if let Some(sent) = self.queued.pop_front() {
            self.collided = Some(sent);
        }
    }

    /// `Incoming::PubAck(pkid)`: what the broker now holds.
    pub fn acked(&mut self, pkid: u16) -> Option<Sent> {
        let sent = self.by_pkid.remove(&pkid)?;
        self.forget(sent);
        Some(sent)
    }

    fn forget(&mut self, sent: Sent) {
        if let Sent::Outbox(_) = sent {
            self.outbox_out = self.outbox_out.saturating_sub(1);
        }
    }

    /// A new connection: nothing is out any more; start again from `oldest`, the oldest
    /// unacknowledged seq in the store.
    pub fn restart(&mut self, oldest: u64) {
        self.queued.clear();
        self.by_pkid.clear();
        self.collided = None;
        self.outbox_out = 0;
        self.cursor = oldest;
    }

    /// `resync`: send again from `seq` on, including what is out now.
    pub fn rewind(&mut self, seq: u64) {
        self.cursor = self.cursor.min(seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_ids_to_seqs_in_hand_over_order() {
        let mut w = Window::new(3, 10);
        w.handed_over(Sent::Outbox(10));
        w.handed_over(Sent::Telemetry);
        w.handed_over(Sent::Outbox(11));
        w.handed_over(Sent::Reply);
        assert_eq!(w.room(), 1);
        assert_eq!(w.cursor(), 12);
        w.went_out(1);
        w.went_out(0);
        w.went_out(2);
        w.went_out(3);
        assert_eq!(w.acked(2), Some(Sent::Outbox(11)));
        assert_eq!(w.acked(3), Some(Sent::Reply));
        assert_eq!(w.acked(1), Some(Sent::Outbox(10)));
        assert_eq!(w.acked(1), None, "a second ack of one id means nothing");
        assert_eq!(w.room(), 3);
        assert_eq!(w.outbox_in_flight(), 0);
    }

    #[test]
    fn telemetry_does_not_take_window_room() {
        let mut w = Window::new(1, 1);
        w.handed_over(Sent::Telemetry);
        w.went_out(0);
        assert_eq!(w.room(), 1);
    }

    #[test]
    fn a_reused_id_frees_the_older_slot() {
        let mut w = Window::new(2, 1);
        w.handed_over(Sent::Outbox(1));
        w.handed_over(Sent::Outbox(2));
        w.went_out(7);
        w.went_out(7);
        assert_eq!(w.outbox_in_flight(), 1);
        assert_eq!(w.acked(7), Some(Sent::Outbox(2)));
        assert_eq!(w.outbox_in_flight(), 0);
    }

    #[test]
    fn a_held_back_publish_goes_out_next() {
        let mut w = Window::new(5, 1);
        w.handed_over(Sent::Outbox(1));
        w.handed_over(Sent::Outbox(2));
        w.handed_over(Sent::Outbox(3));
        w.went_out(1);
        w.held_back();
        w.went_out(2);
        w.went_out(3);
        assert_eq!(w.acked(2), Some(Sent::Outbox(2)));
        assert_eq!(w.acked(3), Some(Sent::Outbox(3)));
        assert_eq!(w.acked(1), Some(Sent::Outbox(1)));
    }

    #[test]
    fn restart_and_rewind_move_the_cursor_back() {
        let mut w = Window::new(5, 1);
        for seq in 1..=4 {
            w.handed_over(Sent::Outbox(seq));
        }
        w.went_out(1);
        assert_eq!(w.acked(1), Some(Sent::Outbox(1)));
        w.restart(2);
        assert_eq!((w.cursor(), w.room()), (2, 5));
        w.went_out(9);
        assert_eq!(w.acked(9), None, "nothing from before the restart maps");
        for seq in 2..=4 {
            w.handed_over(Sent::Outbox(seq));
        }
        w.rewind(3);
        assert_eq!(w.cursor(), 3);
        w.rewind(8);
        assert_eq!(w.cursor(), 3, "rewind never skips ahead");
    }
}
