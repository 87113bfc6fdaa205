//! Free loopback ports. Standalone (std only): `benches/shipper.rs` reaches it through
//! `tests/common/docker.rs`.

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::{Mutex, OnceLock};

/// Pick a free TCP port on 127.0.0.1 (bind :0, then release). Ports handed
/// out by this process are remembered so that concurrently running tests in
/// the same test binary never get the same port twice.
pub fn free_port() -> u16 {
    static USED: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let used = USED.get_or_init(|| Mutex::new(HashSet::new()));
    for _ in 0..200 {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = l.local_addr().expect("local_addr").port();
        drop(l);
        let mut set = used.lock().unwrap();
        if set.insert(port) {
            return port;
        }
    }
    panic!("could not find a free loopback port");
}
