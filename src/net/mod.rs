//! The network front: one mio event loop that accepts connections, parses
//! HTTP with `httparse`, turns requests into [`Request`](crate::matching::Request)s
//! for the matching thread, and writes the answers back in request order.

pub mod api_docs;
pub mod auth;
pub mod http;
pub mod rate_limit;
pub mod send_queue;
pub mod server;
pub mod ws;
