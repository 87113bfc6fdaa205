//! Owns response compression for the HTTP side: one gzip member per body, cached by the
//! callers that serve the same body many times.

/// Fast compression: exposition text shrinks about tenfold even at level 1.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut e = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 8),
        flate2::Compression::fast(),
    );
    e.write_all(data).expect("writing to memory");
    e.finish().expect("writing to memory")
}
