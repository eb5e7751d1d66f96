//! Where deliveries come in: the HTTP server, the queue consumer, what each sender's body
//! and headers say (`delivery`), who may send (`gate`) and SNS signatures (`sns`).

pub mod consumer;
pub mod delivery;
pub mod gate;
pub mod http;
pub mod sns;

#[cfg(test)]
pub(crate) mod shared_fixtures;
