//! What the reactor handle asks of a running shard (drain, listeners added, removed and
//! reconfigured, messages to a listener's factory), carried out between loop turns.

use std::any::Any;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use crate::buffer::BufPool;
use crate::conn::IoConfig;
use crate::idle::IdleList;
use crate::protocol::ProtocolFactory;
use crate::socket::Listener;

use super::{Loop, Shard, IDLE_POOL_BUFFERS};

/// Messages to a shard from the reactor handle.
pub(crate) enum Control {
    /// Stop accepting, let connections finish, force-close what is left at the deadline.
    Drain { deadline: Instant },
    /// Pass a message to one listener's connection factory.
    Message {
        listener: usize,
        message: Arc<dyn Any + Send + Sync>,
    },
    /// A listener was added: its protocol, and in reuseport mode this shard's own socket.
    AddListener {
        id: usize,
        factory: Arc<dyn ProtocolFactory>,
        io: IoConfig,
        listener: Option<Listener>,
    },
    /// A listener was removed (reuseport mode: close this shard's socket for it).
    RemoveListener { id: usize },
    /// A listener's IO settings changed (a reload): its connections use them from now on.
    SetIo { id: usize, io: IoConfig },
    /// A listener's TLS changed (a reload): its new connections handshake with it.
    SetTls {
        id: usize,
        tls: Option<Arc<crate::tls::TlsListener>>,
    },
}

impl Shard {
    /// Carries out what the reactor handle asked, in the order it asked.
    pub(super) fn drain_control(&mut self, state: &mut Loop, now: Instant) {
        while let Some(control) = self.inbox.pop_control() {
            match control {
                Control::Drain { deadline } => self.start_drain(state, deadline, now),
                Control::Message { listener, message } => {
                    if let Some(Some(factory)) = state.factories.get_mut(listener) {
                        factory.on_message(message.as_ref());
                    }
                }
                Control::AddListener {
                    id,
                    factory,
                    io,
                    listener,
                } => self.add_listener(state, id, factory.as_ref(), io, listener),
                Control::SetIo { id, io } => self.set_io(state, id, io),
                Control::SetTls { id, tls } => {
                    if let Some(io) = state.ios.get_mut(id) {
                        io.tls = tls;
                    }
                }
                Control::RemoveListener { id } => {
                    if let Some(local) = self.local_accept.as_mut() {
                        local.accept.listeners.remove(self.poll.registry(), id);
                    }
                }
            }
        }
    }

    fn add_listener(
        &mut self,
        state: &mut Loop,
        id: usize,
        factory: &dyn ProtocolFactory,
        io: IoConfig,
        listener: Option<Listener>,
    ) {
        if state.factories.len() <= id {
            state.factories.resize_with(id + 1, || None);
        }
        // Listener ids only grow; a connection names its listener only once it is here.
        while state.ios.len() <= id {
            state.ios.push(io.clone());
            state
                .input_pools
                .push(BufPool::new(io.read_buffer, IDLE_POOL_BUFFERS));
            state.idle.push(IdleList::default());
        }
        state.input_pools[id] = BufPool::new(io.read_buffer, IDLE_POOL_BUFFERS);
        state.ios[id] = io;
        let mut made = factory.for_shard(self.id);
        made.on_clock(SystemTime::now());
        state.factories[id] = Some(made);
        let (Some(listener), Some(local)) = (listener, self.local_accept.as_mut()) else {
            return;
        };
        if state.draining.is_some() {
            return; // dropped: a draining shard accepts nothing new
        }
        if let Err(error) = local
            .accept
            .listeners
            .add(self.poll.registry(), id, listener)
        {
            tracing::error!(shard = self.id, listener = id, %error, "registering a new listener failed");
        }
    }

    fn set_io(&mut self, state: &mut Loop, id: usize, io: IoConfig) {
        let Some(current) = state.ios.get_mut(id) else {
            return;
        };
        if current.read_buffer != io.read_buffer {
            // Buffers of the old size in use go back to the new pool, which resizes them.
            state.input_pools[id] = BufPool::new(io.read_buffer, IDLE_POOL_BUFFERS);
        }
        let tls = current.tls.take();
        *current = io;
        current.tls = tls;
    }
}
