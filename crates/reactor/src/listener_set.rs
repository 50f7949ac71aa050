//! The listening sockets one accepting thread owns, in slots named by reserved poll tokens.
//! Listeners come and go at run time (a reload adds or removes them), so a slot can be empty.

use std::io;
use std::time::Instant;

use mio::Registry;

use crate::socket::{Listener, PeerAddr, Stream};
use crate::token::Reserved;

struct Slot {
    /// The listener's index in the reactor's listener table.
    id: usize,
    listener: Listener,
    /// May have connections waiting: set by readiness, cleared by `WouldBlock`. No new edge
    /// comes for connections already in the backlog, so this stays set through pauses.
    ready: bool,
    /// Backed off after an error of the listening socket itself: not accepted from until then.
    retry_at: Option<Instant>,
}

#[derive(Default)]
pub(crate) struct ListenerSet {
    slots: Vec<Option<Slot>>,
}

impl ListenerSet {
    /// Registers `listener` under a free slot's token and marks it ready (its backlog may
    /// already hold connections).
    pub fn add(
        &mut self,
        registry: &Registry,
        id: usize,
        mut listener: Listener,
    ) -> io::Result<()> {
        let slot = self
            .slots
            .iter()
            .position(Option::is_none)
            .unwrap_or(self.slots.len());
        listener.register(registry, Reserved::Listener(slot as u32).to_mio())?;
        let entry = Some(Slot {
            id,
            listener,
            ready: true,
            retry_at: None,
        });
        match self.slots.get_mut(slot) {
            Some(free) => *free = entry,
            None => self.slots.push(entry),
        }
        Ok(())
    }

    /// Closes the listener with table index `id`; `false` if this set does not hold it.
    pub fn remove(&mut self, registry: &Registry, id: usize) -> bool {
        let Some(slot) = self
            .slots
            .iter_mut()
            .find(|s| s.as_ref().is_some_and(|s| s.id == id))
        else {
            return false;
        };
        if let Some(mut gone) = slot.take() {
            let _ = gone.listener.deregister(registry);
        }
        true
    }

    pub fn close_all(&mut self, registry: &Registry) {
        for slot in self.slots.drain(..).flatten() {
            let mut listener = slot.listener;
            let _ = listener.deregister(registry);
        }
    }

    pub fn mark_ready(&mut self, slot: usize) {
        if let Some(Some(entry)) = self.slots.get_mut(slot) {
            entry.ready = true;
        }
    }

    pub fn any_ready(&self) -> bool {
        self.slots
            .iter()
            .flatten()
            .any(|s| s.ready && s.retry_at.is_none())
    }

    /// Keeps `slot` from being accepted from until `until`.
    pub fn back_off(&mut self, slot: usize, until: Instant) {
        if let Some(Some(entry)) = self.slots.get_mut(slot) {
            entry.retry_at = Some(until);
        }
    }

    /// Ends the back-offs that are due; such a listener is tried again (no edge may come).
    pub fn retry_due(&mut self, now: Instant) {
        for entry in self.slots.iter_mut().flatten() {
            if entry.retry_at.is_some_and(|at| at <= now) {
                entry.retry_at = None;
                entry.ready = true;
            }
        }
    }

    /// The earliest end of a back-off.
    pub fn next_retry(&self) -> Option<Instant> {
        self.slots.iter().flatten().filter_map(|s| s.retry_at).min()
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_ready(&self, slot: usize) -> bool {
        matches!(self.slots.get(slot), Some(Some(entry)) if entry.ready && entry.retry_at.is_none())
    }

    pub fn set_drained(&mut self, slot: usize) {
        if let Some(Some(entry)) = self.slots.get_mut(slot) {
            entry.ready = false;
        }
    }

    /// Accepts one connection from `slot`, with the listener's table index.
    pub fn accept(&self, slot: usize) -> (usize, io::Result<(Stream, PeerAddr)>) {
        match self.slots.get(slot) {
            Some(Some(entry)) => (entry.id, entry.listener.accept()),
            _ => (usize::MAX, Err(io::ErrorKind::WouldBlock.into())),
        }
    }
}
