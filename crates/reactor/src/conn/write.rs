//! Writing a connection's output: its buffer through the transport, then whatever the
//! transport still holds (TLS ciphertext), with `WRITABLE` and the write deadline only while
//! the socket is full. A plaintext connection with a file segment queued (`Cx::send_file`)
//! writes buffer and segment in their order instead, the segment by `sendfile(2)`.

use std::io;

use mio::Interest;

use super::lifecycle::State;
use super::{Conn, Drive, Env};
use crate::segment;
use crate::stats::{bump, CloseReason};
use crate::tls::stream::Flushed;

impl Conn {
    /// Writes pending output until done or `WouldBlock`; registers `WRITABLE` only then.
    pub(super) fn flush(&mut self, env: &mut Env<'_>) -> Drive {
        if env.segments.has(self.token) {
            return self.flush_with_segment(env);
        }
        // No segment (just checked): the pending output is the buffered output.
        let was_blocked_above_mark = self.buffered_output() > env.io.write_high_water;
        let mut progressed = false;
        let mut had_output = false;
        if let Some(out) = self.out.as_ref() {
            had_output = true;
            if out.len() > u32::MAX as usize {
                return Err(CloseReason::Aborted);
            }
            while (self.out_pos as usize) < out.len() {
                match self.stream.write(&out[self.out_pos as usize..]) {
                    Ok(0) => return Err(CloseReason::IoError),
                    Ok(n) => {
                        self.out_pos += n as u32;
                        progressed = true;
                        bump(
                            &env.stats.listeners[self.listener as usize].bytes_out,
                            n as u64,
                        );
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        return self.wait_writable(progressed, was_blocked_above_mark, env);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return Err(CloseReason::IoError),
                }
            }
            self.out_pos = 0;
            if let Some(out) = self.out.take() {
                env.output_pool.give(out);
            }
        }
        // A lingering connection has shut its write side: what TLS still held (close_notify
        // that did not fit) is given up, and the linger deadline stays as it is.
        if self.stream.has_pending() && !matches!(self.state, State::Lingering { .. }) {
            had_output = true;
            match self.stream.write_pending() {
                Ok(Flushed { done: true, .. }) => {}
                Ok(Flushed { wrote, .. }) => {
                    let progressed = progressed || wrote > 0;
                    return self.wait_writable(progressed, was_blocked_above_mark, env);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return self.wait_writable(progressed, was_blocked_above_mark, env);
                }
                Err(_) => return Err(CloseReason::IoError),
            }
        }
        if had_output {
            self.io_deadline = None;
        }
        if was_blocked_above_mark {
            self.resume_reading(env);
        }
        self.shut_if_asked(env)
    }

    /// The output buffer and a queued file segment, in their order. Only a plaintext
    /// connection gets a segment (`Cx::send_file` asks `Transport::can_sendfile`), so there is
    /// no ciphertext to write after it.
    // Out of line (as `wait_writable`): a small response written at once is the hot path,
    // and `flush` stays a small function for it.
    #[inline(never)]
    fn flush_with_segment(&mut self, env: &mut Env<'_>) -> Drive {
        if self
            .out
            .as_ref()
            .is_some_and(|out| out.len() > u32::MAX as usize)
        {
            return Err(CloseReason::Aborted);
        }
        let was_blocked_above_mark = self.pending_output(env) > env.io.write_high_water;
        let Some(socket) = self.stream.plain_mut() else {
            return Err(CloseReason::Aborted);
        };
        let mut pos = self.out_pos as usize;
        let mut queued = env.segments.take(self.token);
        let drained = segment::drain(socket, self.out.as_deref(), &mut pos, &mut queued);
        self.out_pos = pos as u32;
        let written_out = self.out.as_ref().is_some_and(|out| pos == out.len());
        if let Some(mut seg) = queued {
            if written_out {
                seg.rebase();
            }
            env.segments.insert(self.token, seg);
        }
        let drained = drained.map_err(|_| CloseReason::IoError)?;
        if drained.wrote > 0 {
            let counters = &env.stats.listeners[self.listener as usize];
            bump(&counters.bytes_out, drained.wrote);
            if drained.from_file > 0 {
                bump(&counters.bytes_sendfile, drained.from_file);
            }
        }
        self.give_back_written(env);
        if drained.blocked {
            return self.wait_writable(drained.wrote > 0, was_blocked_above_mark, env);
        }
        self.io_deadline = None;
        if was_blocked_above_mark {
            self.resume_reading(env);
        }
        self.shut_if_asked(env)
    }

    /// An output buffer written to its end goes back to the pool, even while a segment queued
    /// behind it is still being sent (its mark was moved to the next buffer's start).
    fn give_back_written(&mut self, env: &mut Env<'_>) {
        if self
            .out
            .as_ref()
            .is_some_and(|out| self.out_pos as usize == out.len())
        {
            if let Some(out) = self.out.take() {
                env.output_pool.give(out);
            }
            self.out_pos = 0;
        }
    }

    #[inline(never)]
    pub(super) fn wait_writable(
        &mut self,
        progressed: bool,
        was_above: bool,
        env: &mut Env<'_>,
    ) -> Drive {
        if !self.writable_registered {
            // WRITABLE stays registered from now on: with edge triggering it only reports when
            // a full send buffer gains room, so leaving it costs nothing and saves a syscall.
            let interest = Interest::READABLE | Interest::WRITABLE;
            if self
                .stream
                .reregister(env.registry, self.token.to_mio(), interest)
                .is_err()
            {
                return Err(CloseReason::IoError);
            }
            self.writable_registered = true;
        }
        if progressed || self.io_deadline.is_none() {
            self.io_deadline = Some(env.moment.after(env.io.write_timeout));
        }
        let pending = self.buffered_output() as u64;
        if pending
            > env
                .stats
                .peak_output_buffered
                .load(std::sync::atomic::Ordering::Relaxed)
        {
            crate::stats::set(&env.stats.peak_output_buffered, pending);
        }
        if was_above && self.pending_output(env) <= env.io.write_high_water {
            self.resume_reading(env);
        }
        Ok(())
    }
}
