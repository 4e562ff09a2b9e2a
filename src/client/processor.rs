//! Push handlers: the Rust counterpart of JavaScript's `RTMProcessor`.

use std::sync::Arc;

use parking_lot::RwLock;

use crate::hash::FastMap;
use crate::types::{PushEvent, PushMessage};

type PushHandler = Arc<dyn Fn(&PushMessage) + Send + Sync>;
type Plain = Arc<dyn Fn() + Send + Sync>;
type RoomHandler = Arc<dyn Fn(i64) + Send + Sync>;

/// Where pushes from the gate are delivered. Mirrors JavaScript
/// `client.processor` (an `RTMProcessor`): register handlers with
/// [`RtmProcessor::on`] as JavaScript does with `processor.on(name, fn)`.
/// Several handlers may listen to one event; they run in registration order.
#[derive(Default)]
pub struct RtmProcessor {
    /// Each event's handlers, replaced whole by `on` so that a push takes them
    /// with one reference count (the keys are the crate's own enum, hence the
    /// fast hash; src/hash.rs).
    pushes: RwLock<FastMap<PushEvent, Arc<[PushHandler]>>>,
    kickout: RwLock<Vec<Plain>>,
    kickout_room: RwLock<Vec<RoomHandler>>,
    ping: RwLock<Vec<Plain>>,
}

impl std::fmt::Debug for RtmProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RtmProcessor").finish_non_exhaustive()
    }
}

impl RtmProcessor {
    /// Listens to a push event. Mirrors JavaScript `processor.on('pushmsg', fn)`
    /// and the other `push*` names ([`PushEvent::name`]).
    pub fn on(&self, event: PushEvent, handler: impl Fn(&PushMessage) + Send + Sync + 'static) {
        let mut pushes = self.pushes.write();
        let mut handlers = pushes.get(&event).map_or_else(Vec::new, |h| h.to_vec());
        handlers.push(Arc::new(handler));
        pushes.insert(event, handlers.into());
    }

    /// Listens to `kickout`: the gate ended the session (no reconnect follows).
    /// Mirrors JavaScript `processor.on('kickout', fn)`.
    pub fn on_kickout(&self, handler: impl Fn() + Send + Sync + 'static) {
        self.kickout.write().push(Arc::new(handler));
    }

    /// Listens to `kickoutroom`: the user was removed from room `rid`.
    /// Mirrors JavaScript `processor.on('kickoutroom', fn)`.
    pub fn on_kickout_room(&self, handler: impl Fn(i64) + Send + Sync + 'static) {
        self.kickout_room.write().push(Arc::new(handler));
    }

    /// Listens to the gate's `ping`. Mirrors JavaScript `processor.on('ping', fn)`.
    pub fn on_ping(&self, handler: impl Fn() + Send + Sync + 'static) {
        self.ping.write().push(Arc::new(handler));
    }

    /// The handlers of `event`, in registration order; `None` when it has none.
    pub(crate) fn push_handlers(&self, event: PushEvent) -> Option<Arc<[PushHandler]>> {
        self.pushes.read().get(&event).cloned()
    }

    pub(crate) fn kickout_handlers(&self) -> Vec<Plain> {
        self.kickout.read().clone()
    }

    pub(crate) fn kickout_room_handlers(&self) -> Vec<RoomHandler> {
        self.kickout_room.read().clone()
    }

    pub(crate) fn ping_handlers(&self) -> Vec<Plain> {
        self.ping.read().clone()
    }
}
