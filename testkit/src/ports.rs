//! Free loopback ports. Standalone (std only): `benches/shipper.rs` reaches it through
//! `tests/common/docker.rs`.

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::{Mutex, OnceLock};

/// Pick a free TCP port on 127.0.0.1 below the ephemeral range (32768-60999), so that no
/// client socket of this machine can take it between now and the moment the caller's
/// server binds it (a port found by binding :0 is an ephemeral one, and one was taken
/// that way). Ports handed out by this process are remembered, so concurrently running
/// tests in the same test binary never get the same port twice.
pub fn free_port() -> u16 {
    const LOW: u32 = 20_000;
    const HIGH: u32 = 32_767;
    static USED: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let used = USED.get_or_init(|| Mutex::new(HashSet::new()));
    // Start somewhere that depends on the process, so test runs side by side (a bench
    // and a test) rarely walk the same ports.
    let start = std::process::id().wrapping_mul(2_654_435_761).wrapping_add(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0),
    );
    let span = HIGH - LOW + 1;
    let mut set = used.lock().unwrap();
    for i in 0..span {
        let port = (LOW + (start.wrapping_add(i.wrapping_mul(7919))) % span) as u16;
        if set.contains(&port) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            set.insert(port);
            return port;
        }
    }
    panic!("could not find a free loopback port below 32768");
}
