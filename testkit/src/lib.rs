//! natsmon's test kit: the pieces both the integration tests (`tests/it`) and the benches
//! use, in a crate of their own so that each user takes what it needs without copies.
//! Real components only: the Loki receiver decodes the real wire format, and the Docker
//! helpers drive the real dockerd.

pub mod docker;
pub mod loki;
pub mod ports;
pub mod proc;
