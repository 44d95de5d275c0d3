//! Telling people things: security notices, and the outbox that delivers
//! mail, texts and calls off the request path.

pub mod notice;
pub(crate) mod notices;
pub mod outbox;
pub mod store;
