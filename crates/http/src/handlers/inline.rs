//! Handlers that answer on the shard itself, with nothing that can block.

use serde::Serialize;

use crate::response::{write_reply, Finish, Reply};

#[derive(Serialize)]
struct Message<'a> {
    message: &'a str,
}

/// `{"message":"Hello, World!"}`, serialized per request into `scratch` (kept by the shard, so
/// once it has grown this allocates nothing), then copied behind the head that needs its length.
pub(crate) fn write_json(out: &mut Vec<u8>, scratch: &mut Vec<u8>, finish: Finish<'_>) -> u16 {
    scratch.clear();
    let message = Message {
        message: "Hello, World!",
    };
    if serde_json::to_writer(&mut *scratch, &message).is_err() {
        scratch.clear();
    }
    let reply = Reply {
        status: 200,
        content_type: Some(b"application/json"),
        extra: b"",
        body: scratch,
    };
    write_reply(out, &reply, finish);
    200
}

/// The request body back, with the request's content type (`application/octet-stream` if none).
pub(crate) fn write_echo(
    out: &mut Vec<u8>,
    content_type: &[u8],
    body: &[u8],
    finish: Finish<'_>,
) -> u16 {
    let content_type: &[u8] = if content_type.is_empty() {
        b"application/octet-stream"
    } else {
        content_type
    };
    let reply = Reply {
        status: 200,
        content_type: Some(content_type),
        extra: b"",
        body,
    };
    write_reply(out, &reply, finish);
    200
}
