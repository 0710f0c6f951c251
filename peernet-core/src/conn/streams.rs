//! The driver's side of streams: the link between each stream in the connection
//! machine and the program's [`Stream`] handle. The driver calls [`Links::pump`] when
//! the handle poked it or the machine said the stream can move, and [`Links::on_event`]
//! for every stream event; bytes move between the handle's buffers and the machine
//! here, and nowhere else.

use std::collections::HashMap;
use std::sync::Arc;

use peernet_proto::connection::Connection;
use peernet_proto::stream::{Read, StreamError, StreamEvent, RESET_REFUSED};

use super::stream::{Ended, Shared, State, Stream, INBOX_CAP};
use super::{lock, Conn, Host};
use crate::error::{CloseReason, Error, Result};

/// The streams of one connection that have a handle.
#[derive(Debug, Default)]
pub(super) struct Links {
    map: HashMap<u64, Arc<Shared>>,
    scratch: Vec<u8>,
}

/// A machine refusal as the API's error.
pub(super) fn stream_error(e: StreamError, conn: &Conn) -> Error {
    match e {
        StreamError::ConnectionClosed => conn.closed_error(),
        StreamError::Draining => Error::Closed(CloseReason::Duplicate),
        e @ StreamError::NotNegotiated => Error::StreamReset {
            code: RESET_REFUSED,
            reason: e.to_string(),
        },
        StreamError::BadName(why) => Error::InvalidArgument(format!("stream name: {why}")),
        StreamError::TooManyStreams { .. } | StreamError::Backlog { .. } => Error::Overloaded,
        other => Error::Internal(other.to_string()),
    }
}

impl Links {
    /// Opens a stream in the machine and links a handle to it.
    pub(super) fn open(
        &mut self,
        machine: &mut Connection,
        conn: &Arc<Conn>,
        name: String,
    ) -> Result<Stream> {
        let cmds = conn.stream_sender();
        let id = machine
            .open_stream(&name)
            .map_err(|e| stream_error(e, conn))?;
        let shared = Shared::new(id, true, cmds);
        self.map.insert(id, Arc::clone(&shared));
        Ok(Stream::new(shared, conn.info.peer, name))
    }

    /// The peer opened stream `id` to `name`: refused at once when nothing of that
    /// name is exposed or trust was revoked; else the handler runs (its predicate
    /// first, off the driver) and accepts it.
    fn on_opened(
        &mut self,
        machine: &mut Connection,
        host: &Arc<dyn Host>,
        conn: &Arc<Conn>,
        id: u64,
        name: String,
    ) {
        let handler = host.stream_handler(&name);
        let Some(handler) = handler.filter(|_| !conn.revoked.is_set()) else {
            let reason = format!("no stream handler named {name:?}");
            let _ = machine.stream_reset(id, RESET_REFUSED, &reason);
            return;
        };
        let shared = Shared::new(id, false, conn.stream_sender());
        self.map.insert(id, Arc::clone(&shared));
        let stream = Stream::new(shared, conn.info.peer, name);
        handler.spawn(stream, |s| s.request_accept());
    }

    /// What the machine said about a stream.
    pub(super) fn on_event(
        &mut self,
        machine: &mut Connection,
        host: &Arc<dyn Host>,
        conn: &Arc<Conn>,
        ev: StreamEvent,
        closed: Option<CloseReason>,
    ) {
        match ev {
            StreamEvent::Opened { id, name } => self.on_opened(machine, host, conn, id, name),
            StreamEvent::Readable { id }
            | StreamEvent::Writable { id }
            | StreamEvent::Finished { id } => self.pump(machine, id),
            StreamEvent::Reset { id, code, reason } => {
                self.end(id, Ended::Reset { code, reason });
            }
            StreamEvent::Aborted { id } => {
                let reason = closed.unwrap_or(CloseReason::Local("connection closed".into()));
                self.end(id, Ended::Closed(reason));
            }
        }
    }

    fn end(&mut self, id: u64, how: Ended) {
        if let Some(sh) = self.map.remove(&id) {
            let mut st = lock(&sh.state);
            if st.ended.is_none() && !st.done {
                st.ended = Some(how);
            }
            st.wake(&sh);
        }
    }

    /// Moves what can move on stream `id` between its handle and the machine: a reset
    /// or accept the handle asked for, written bytes and the finish into the machine,
    /// received bytes out of it (up to `INBOX_CAP` ahead of the program's reads; all
    /// of them, discarded, once the handle is gone).
    pub(super) fn pump(&mut self, machine: &mut Connection, id: u64) {
        let Some(sh) = self.map.get(&id).cloned() else {
            return;
        };
        let mut st = lock(&sh.state);
        st.poked = false;
        if let Some((code, reason)) = st.reset_requested.take() {
            let _ = machine.stream_reset(id, code, &reason);
            drop(st);
            self.map.remove(&id);
            return;
        }
        if !st.accepted {
            if !st.accept_requested {
                return;
            }
            st.accepted = true;
            let _ = machine.accept_stream(id);
        }
        self.move_out(machine, id, &mut st);
        self.move_in(machine, id, &mut st);
        let gone = !machine.streams().is_some_and(|t| t.contains(id));
        if gone && st.ended.is_none() && st.fin_sent && st.remote_end {
            // Ended normally both ways: the machine forgot it, nothing more will come.
            // A stream that left the machine any other way (the peer's reset, the
            // connection's close) has its event still queued behind this poke, or
            // `close_all` to come: that ends it with the right error.
            st.done = true;
            st.remote_end = true;
            st.wake(&sh);
            drop(st);
            self.map.remove(&id);
            return;
        }
        st.wake(&sh);
    }

    fn move_out(&mut self, machine: &mut Connection, id: u64, st: &mut State) {
        while !st.outbox.is_empty() {
            let (front, _) = st.outbox.as_slices();
            match machine.stream_write(id, front) {
                Ok(0) => return,
                Ok(n) => {
                    st.outbox.drain(..n);
                }
                Err(_) => {
                    st.outbox.clear();
                    break;
                }
            }
        }
        if st.fin_requested && !st.fin_sent {
            st.fin_sent = true;
            let _ = machine.stream_finish(id);
        }
    }

    fn move_in(&mut self, machine: &mut Connection, id: u64, st: &mut State) {
        if st.remote_end {
            return;
        }
        loop {
            let r = if st.dropped {
                // Nobody reads: what arrives is read out (so credit flows) and dropped.
                self.scratch.resize(INBOX_CAP, 0);
                machine.stream_read(id, &mut self.scratch)
            } else {
                let room = st.inbox.spare(INBOX_CAP);
                if room.is_empty() {
                    st.inbox_full = true;
                    return;
                }
                let r = machine.stream_read(id, room);
                if let Ok(Read::Bytes(n)) = r {
                    st.inbox.commit(n);
                }
                r
            };
            match r {
                Ok(Read::Bytes(_)) => {}
                Ok(Read::Blocked) => return,
                Ok(Read::End) => {
                    st.remote_end = true;
                    return;
                }
                // Not in the machine any more (reset, aborted): not an end of data;
                // the event that removed it ends the handle.
                Err(_) => return,
            }
        }
    }

    /// Every linked stream ends with the connection (what the machine did not report
    /// as aborted, for instance streams opened after its close).
    pub(super) fn close_all(&mut self, reason: &CloseReason) {
        for (_, sh) in self.map.drain() {
            let mut st = lock(&sh.state);
            if st.ended.is_none() && !st.done {
                st.ended = Some(Ended::Closed(reason.clone()));
            }
            st.wake(&sh);
        }
    }
}

#[cfg(test)]
mod tests {
    //! A poke the driver handles after the machine removed a stream and before the
    //! event saying why is dispatched (a parked send holds dispatch back, or the close
    //! and the poke came in one batch of commands): the handle must end with the
    //! event's error, not look finished or read a clean end of data.
    use std::time::Instant;

    use peernet_proto::connection::{Config, Event};
    use peernet_proto::envelope::GoodbyeReason;
    use peernet_proto::handshake::Handshake;
    use peernet_proto::hello::Hello;
    use peernet_proto::stream::{StreamConfig, FEATURE_STREAMS};
    use peernet_proto::Key;
    use std::time::Duration;
    use tokio::sync::mpsc;

    use super::*;

    fn machines() -> (Connection, Connection) {
        let config = Config {
            streams: Some(StreamConfig::default()),
            ..Config::default()
        };
        let mut hello = Hello::new(config.max_frame_len, 7000);
        hello.features |= FEATURE_STREAMS;
        let mut i = Handshake::initiator(&[1; 32], &hello).unwrap();
        let mut r = Handshake::responder(&[2; 32], &hello).unwrap();
        r.read_m1(&i.write_m1().unwrap()).unwrap();
        i.read_m2(&r.write_m2().unwrap()).unwrap();
        r.read_m3(&i.write_m3().unwrap()).unwrap();
        let now = Instant::now();
        let a = Connection::from_handshake(now, i, &hello, config).unwrap();
        let b = Connection::from_handshake(now, r, &hello, config).unwrap();
        (a, b)
    }

    fn shuttle(from: &mut Connection, to: &mut Connection) {
        let mut buf = Vec::new();
        from.poll_transmit(&mut buf);
        to.handle_bytes(Instant::now(), &buf);
    }

    /// `a`'s stream linked to a handle, open on `b` too.
    fn linked() -> (Connection, Connection, Links, Stream, Arc<Shared>) {
        let (mut a, mut b) = machines();
        let id = a.open_stream("s").unwrap();
        let (tx, _rx) = mpsc::unbounded_channel();
        let shared = Shared::new(id, true, tx);
        let mut links = Links::default();
        links.map.insert(id, Arc::clone(&shared));
        let stream = Stream::new(Arc::clone(&shared), Key::from_bytes([2; 32]), "s".into());
        for _ in 0..3 {
            shuttle(&mut b, &mut a);
            shuttle(&mut a, &mut b);
        }
        while a.poll_event().is_some() {}
        (a, b, links, stream, shared)
    }

    #[test]
    fn a_poke_after_the_close_and_before_its_event_ends_the_stream_as_closed() {
        let (mut a, _b, mut links, stream, shared) = linked();
        a.close(GoodbyeReason::Closing).unwrap();
        links.pump(&mut a, stream.id());
        {
            let st = lock(&shared.state);
            assert!(!st.done && !st.remote_end && st.ended.is_none(), "{st:?}");
        }
        // The Aborted event, dispatched now, gives the error every write sees.
        let aborted = std::iter::from_fn(|| a.poll_event())
            .any(|e| matches!(e, Event::Stream(StreamEvent::Aborted { .. })));
        assert!(aborted);
        links.end(
            stream.id(),
            Ended::Closed(CloseReason::Local("closed".into())),
        );
        let r = stream.write_blocking(b"x", Some(Duration::ZERO));
        assert!(matches!(r, Err(Error::Closed(_))), "{r:?}");
    }

    #[test]
    fn a_poke_after_the_peers_reset_and_before_its_event_reads_the_reset_not_an_end() {
        let (mut a, mut b, mut links, stream, shared) = linked();
        b.stream_reset(stream.id(), 77, "no").unwrap();
        shuttle(&mut b, &mut a);
        links.pump(&mut a, stream.id());
        {
            let st = lock(&shared.state);
            assert!(!st.done && !st.remote_end && st.ended.is_none(), "{st:?}");
        }
        let reset = std::iter::from_fn(|| a.poll_event()).find_map(|e| match e {
            Event::Stream(StreamEvent::Reset { code, reason, .. }) => Some((code, reason)),
            _ => None,
        });
        let (code, reason) = reset.unwrap();
        links.end(stream.id(), Ended::Reset { code, reason });
        let mut buf = [0u8; 4];
        let r = stream.read_blocking(&mut buf, Some(Duration::ZERO));
        assert!(
            matches!(r, Err(Error::StreamReset { code: 77, .. })),
            "{r:?}"
        );
    }
}
