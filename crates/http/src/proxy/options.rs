//! `OPTIONS` with `Max-Forwards: 0` on a proxy route: this proxy is the request's final
//! recipient (RFC 9110 §7.6.2), so it answers 200 with the route's `Allow`, as `OPTIONS *`
//! is answered, and no server is picked. (`TRACE` never reaches a proxy route: a route
//! cannot list it, so the router answers 405 first.)

use coreloop_reactor::Cx;

use crate::conn::{Flow, HttpConn};
use crate::exchange::Target;
use crate::response::{write_reply, Finish, Reply};

impl HttpConn {
    pub(crate) fn answer_options_here(&mut self, body: bool, cx: &mut Cx<'_>) -> Flow {
        let (target, keep_alive) = match self.exchange.as_ref() {
            Some(e) => (e.target, e.keep_alive),
            None => (Target::NotFound, false),
        };
        let allow: &[u8] = match target {
            Target::Route { group, .. } => self.settings.routes.allow(group),
            _ => b"",
        };
        // A body left unread on the connection could not be told from the next request.
        let close = body || !keep_alive || self.must_close(cx);
        let reply = Reply {
            status: 200,
            content_type: None,
            extra: allow,
            body: b"",
        };
        let finish = Finish {
            date: &self.shared.date.get(),
            close,
            head_only: false,
            announce_keep_alive: self.http10,
        };
        write_reply(cx.out(), &reply, finish);
        if close {
            cx.refuse();
        }
        self.done(200, close, cx)
    }
}
