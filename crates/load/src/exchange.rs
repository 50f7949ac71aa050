//! Requests out, responses in, on one open connection: queueing, writing,
//! reading until the receive queue is empty, framing and checking.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::conn::{Conn, InFlight};
use crate::plan::Plan;
use crate::stats::{ErrorKind, Stats};
use crate::target::Protocol;

/// Reads per readiness event before yielding to other connections; the
/// connection then goes on the ready list, since no new edge will come.
const READS_PER_EVENT: usize = 16;

/// What the worker must do with a connection after an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Keep,
    /// The read budget ran out before `WouldBlock`: serve again before polling.
    More,
    /// The server closed cleanly (or announced it would): reconnect and
    /// write the unanswered requests again.
    Reconnect,
    /// Close; every request in flight failed with this kind.
    Fail(ErrorKind),
}

/// A worker's mutable state that connection operations update.
#[derive(Debug)]
pub struct Env {
    pub plan: Arc<Plan>,
    pub stats: Stats,
    /// Measured requests this worker may still start; `None` = no limit.
    pub budget: Option<u64>,
    /// Requests in flight over all this worker's connections.
    pub in_flight: u64,
    pub stopping: bool,
}

impl Env {
    /// Whether a new measured or warm-up request may still be started.
    pub fn may_start(&self) -> bool {
        !self.stopping && self.budget != Some(0)
    }

    fn start(&mut self, conn: &mut Conn, start: Instant, now: Instant) {
        let measured = start >= self.plan.measure_start;
        if measured {
            self.stats.sent += 1;
            self.stats.bytes_written += self.plan.batch.unit() as u64;
            if let Some(b) = self.budget.as_mut() {
                *b -= 1;
            }
        } else {
            self.stats.warmup.sent += 1;
        }
        conn.in_flight.push_back(InFlight {
            start,
            queued: now,
            measured,
        });
        conn.unwritten += self.plan.batch.unit();
        self.in_flight += 1;
    }
}

/// Queues as many new requests as the mode allows: closed loop fills the
/// pipeline (in batch mode only once it is empty); open loop sends the
/// requests that are due, each stamped with its intended time so a late send
/// counts as latency.
pub fn fill(conn: &mut Conn, env: &mut Env, now: Instant) {
    // Batch mode: against nginx, which answers each pipelined request in its
    // own segment, a window refill writes ~15 small segments per 16 requests
    // and a batch refill one (docs/BENCHMARKS.md, coreloop-load versus wrk).
    if env.plan.refill_when_empty && !conn.in_flight.is_empty() {
        return;
    }
    let depth = env.plan.pipeline;
    while conn.in_flight.len() < depth && env.may_start() {
        let start = match (env.plan.interval, conn.next_due) {
            (None, _) => now,
            (Some(interval), Some(due)) if due <= now => {
                let due = skip_warmup(env, due, interval, now);
                if due > now {
                    conn.next_due = Some(due);
                    return;
                }
                conn.next_due = Some(due + interval);
                due
            }
            _ => return,
        };
        env.start(conn, start, now);
    }
}

/// Open loop, once measuring has begun: the warm-up's unsent requests are
/// dropped from the schedule (counted in `warmup.skipped`), so every
/// measured request is due in the measured phase and a backlog built in the
/// warm-up neither starves the measured phase nor hides in its figures.
fn skip_warmup(env: &mut Env, due: Instant, interval: Duration, now: Instant) -> Instant {
    let begin = env.plan.measure_start;
    if due >= begin || now < begin {
        return due;
    }
    let behind = begin.duration_since(due).as_nanos();
    let step = interval.as_nanos().max(1);
    let n = behind.div_ceil(step);
    env.stats.warmup.skipped += n as u64;
    due + Duration::from_nanos((n * step) as u64)
}

/// Open loop: the time a send timer should fire for this connection, if any.
pub fn send_timer(conn: &Conn, env: &Env) -> Option<Instant> {
    if conn.send_timer || conn.in_flight.len() >= env.plan.pipeline || !env.may_start() {
        return None;
    }
    env.plan.interval.and(conn.next_due)
}

/// Writes queued request bytes until done or `WouldBlock`.
pub fn flush(conn: &mut Conn, env: &mut Env) -> Verdict {
    let unit = env.plan.batch.unit();
    // TLS records encrypted earlier that the socket did not take.
    if let Some(Err(_)) = conn.stream.as_mut().map(|s| s.flush_pending()) {
        return Verdict::Fail(ErrorKind::Write);
    }
    while conn.unwritten > 0 {
        let Some(stream) = conn.stream.as_mut() else {
            return Verdict::Keep;
        };
        let bytes = env.plan.batch.slice(conn.write_pos, conn.unwritten);
        match stream.write(bytes) {
            Ok(0) => return Verdict::Fail(ErrorKind::Write),
            Ok(n) => {
                conn.unwritten -= n;
                conn.write_pos = (conn.write_pos + n) % unit;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Verdict::Fail(ErrorKind::Write),
        }
    }
    Verdict::Keep
}

/// How far `read` may stop short of `WouldBlock`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadUntil {
    /// Called for a readiness event without `EPOLLRDHUP`: a read that fills
    /// less than the buffer has emptied the receive queue, and on Linux every
    /// later segment (or FIN) raises a new edge, so the `read` that would only
    /// return `EAGAIN` is skipped. Against nginx pipelining 16 deep that was one
    /// syscall in three.
    ShortRead,
    /// The event carried the FIN (its edge is spent) or there was no event
    /// (timer, ready list, connect): only `WouldBlock` or EOF ends the loop.
    WouldBlock,
}

/// Reads until `until` says there is nothing left (or the per-event budget
/// runs out) into the worker's scratch buffer, framing every response that
/// completes. `stamp` is set to the time taken after the last read that
/// brought bytes, so the caller need not read the clock again.
pub fn read(
    conn: &mut Conn,
    env: &mut Env,
    scratch: &mut [u8],
    until: ReadUntil,
    stamp: &mut Option<Instant>,
) -> Verdict {
    for _ in 0..READS_PER_EVENT {
        let Some(stream) = conn.stream.as_mut() else {
            return Verdict::Keep;
        };
        match stream.read(scratch) {
            Ok(0) => return eof(conn, env, Instant::now()),
            Ok(n) => {
                // Stamp responses when their bytes arrive, not when the poll
                // batch began: later events in a big batch would look faster.
                let now = Instant::now();
                *stamp = Some(now);
                let drained = stream.drained(n, scratch.len());
                let v = consume(conn, env, &scratch[..n], now);
                if v != Verdict::Keep || (drained && until == ReadUntil::ShortRead) {
                    return v;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Verdict::Keep,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Verdict::Fail(ErrorKind::Read),
        }
    }
    Verdict::More
}

fn eof(conn: &mut Conn, env: &mut Env, now: Instant) -> Verdict {
    if env.plan.protocol == Protocol::Echo {
        return eof_verdict(conn);
    }
    match conn.framer.finish() {
        Ok(Some(r)) => {
            if !complete(conn, env, r.status, now) {
                return Verdict::Fail(ErrorKind::Malformed);
            }
            eof_verdict(conn)
        }
        Ok(None) => eof_verdict(conn),
        Err(_) => Verdict::Fail(ErrorKind::Read),
    }
}

/// A close with requests unanswered (and not announced) fails them as reads.
fn eof_verdict(conn: &Conn) -> Verdict {
    if conn.in_flight.is_empty() && conn.echo_pos == 0 {
        Verdict::Reconnect
    } else {
        Verdict::Fail(ErrorKind::Read)
    }
}

fn consume(conn: &mut Conn, env: &mut Env, data: &[u8], now: Instant) -> Verdict {
    match env.plan.protocol {
        Protocol::Http => consume_http(conn, env, data, now),
        Protocol::Echo => consume_echo(conn, env, data, now),
    }
}

fn consume_http(conn: &mut Conn, env: &mut Env, mut data: &[u8], now: Instant) -> Verdict {
    while !data.is_empty() {
        let (used, done) = match conn.framer.feed(data) {
            Ok(step) => step,
            Err(_) => return Verdict::Fail(ErrorKind::Malformed),
        };
        data = &data[used..];
        conn.response_bytes += used as u64;
        let Some(r) = done else { continue };
        if !complete(conn, env, r.status, now) {
            return Verdict::Fail(ErrorKind::Malformed);
        }
        if r.close {
            // Bytes after a closing response are not ours to frame.
            return Verdict::Reconnect;
        }
    }
    Verdict::Keep
}

/// Checks echoed bytes against the payload at the same offset.
fn consume_echo(conn: &mut Conn, env: &mut Env, mut data: &[u8], now: Instant) -> Verdict {
    let plan = Arc::clone(&env.plan);
    let payload = plan.batch.one();
    while !data.is_empty() {
        if conn.in_flight.is_empty() {
            return Verdict::Fail(ErrorKind::Malformed);
        }
        let k = (payload.len() - conn.echo_pos).min(data.len());
        if data[..k] != payload[conn.echo_pos..conn.echo_pos + k] {
            return Verdict::Fail(ErrorKind::Malformed);
        }
        conn.echo_pos += k;
        conn.response_bytes += k as u64;
        data = &data[k..];
        if conn.echo_pos == payload.len() {
            conn.echo_pos = 0;
            complete(conn, env, 200, now);
        }
    }
    Verdict::Keep
}

/// Records the oldest request's answer; false if nothing was asked. Its
/// bytes (the response's head and body, interim responses included) count
/// with the phase the request belongs to.
fn complete(conn: &mut Conn, env: &mut Env, status: u16, now: Instant) -> bool {
    let Some(req) = conn.in_flight.pop_front() else {
        return false;
    };
    env.in_flight -= 1;
    let bytes = std::mem::take(&mut conn.response_bytes);
    conn.low_water.response(bytes);
    if conn.in_flight.is_empty() {
        conn.low_water
            .batch_done(now.saturating_duration_since(req.queued));
    }
    let s = &mut env.stats;
    if !req.measured {
        s.warmup.completed += 1;
        return true;
    }
    let latency = now.saturating_duration_since(req.start);
    s.responses += 1;
    s.bytes_read += bytes;
    s.latency.record(latency);
    s.series.completed(env.plan.measure_start, now, latency);
    if env.plan.protocol == Protocol::Http {
        s.statuses.count(status);
    }
    if (200..300).contains(&status) {
        s.ok += 1;
    } else {
        s.errors.status += 1;
    }
    true
}

/// Fails every request in flight on `conn` with `kind`.
pub fn fail_all(conn: &mut Conn, env: &mut Env, kind: ErrorKind) {
    let mut measured = 0;
    for req in conn.in_flight.drain(..) {
        env.in_flight -= 1;
        measured += u64::from(req.measured);
    }
    conn.response_bytes = 0;
    if measured > 0 {
        env.stats.errors.add(kind, measured);
        env.stats
            .series
            .failed(env.plan.measure_start, Instant::now(), measured);
    }
}

/// Counts requests about to be written again after a clean close; their
/// bytes are written again too.
pub fn note_retry(conn: &Conn, env: &mut Env) {
    let again = conn.in_flight.iter().filter(|r| r.measured).count() as u64;
    env.stats.retried += again;
    env.stats.bytes_written += again * env.plan.batch.unit() as u64;
}

/// Open loop: measured requests that fell due before `end` (the end of the
/// duration, or when the run was stopped) but were never sent.
pub fn backlog(c: &Conn, plan: &Plan, interval: Duration, end: Instant) -> u64 {
    let Some(due) = c.next_due else { return 0 };
    let from = due.max(plan.measure_start);
    if from >= end {
        return 0;
    }
    let late = end.duration_since(from);
    (late.as_secs_f64() / interval.as_secs_f64()).floor() as u64 + 1
}

/// Open loop: warm-up requests of `c` that were due but never sent.
pub fn unsent_warmup(c: &Conn, plan: &Plan, interval: Duration) -> u64 {
    match c.next_due {
        Some(due) if due < plan.measure_start => {
            plan.measure_start
                .duration_since(due)
                .as_nanos()
                .div_ceil(interval.as_nanos().max(1)) as u64
        }
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every position of a due time and of `now` around the start of the
    /// measured phase (interval 10 ms, warm-up 1 s).
    #[test]
    fn warmup_backlog_is_skipped_exactly_once_measuring_began() {
        let mut c = crate::Config::new(crate::target::parse("http://127.0.0.1:1/").unwrap());
        c.warmup = Duration::from_secs(1);
        let t0 = Instant::now();
        let plan = Arc::new(Plan::new(&c, t0).unwrap());
        let begin = plan.measure_start;
        let ms = Duration::from_millis;
        let step = ms(10);
        // (due, now) -> (returned due, skipped)
        let cases = [
            (begin - ms(500), begin - ms(1), begin - ms(500), 0), // still warming up
            (begin - ms(500), begin, begin, 50),                  // lands exactly on the start
            (begin - ms(505), begin + ms(3), begin + ms(5), 51),  // lands just inside
            (begin - ms(1), begin + ms(900), begin + ms(9), 1),   // one behind
            (begin, begin + ms(20), begin, 0),                    // already measured
            (begin + ms(7), begin + ms(20), begin + ms(7), 0),
        ];
        for (due, now, want, skipped) in cases {
            let mut env = Env {
                plan: Arc::clone(&plan),
                stats: Stats::default(),
                budget: None,
                in_flight: 0,
                stopping: false,
            };
            let got = skip_warmup(&mut env, due, step, now);
            assert_eq!(
                (got, env.stats.warmup.skipped),
                (want, skipped),
                "due {:?} now {:?} (relative to the start)",
                due.checked_duration_since(begin),
                now.checked_duration_since(begin)
            );
        }
    }
}
