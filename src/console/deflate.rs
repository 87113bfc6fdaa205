//! Owns the console's gzip bodies: ONE gzip member (any client decodes it, not only those
//! that accept concatenated members) assembled from pieces compressed separately, so the
//! thousands of table rows and stream records are compressed once per cluster view and
//! only the small parts that change per request (times, ages, node states) are
//! compressed per request.
//!
//! Each piece is raw deflate ending in a sync flush: whole blocks, byte-aligned, not
//! final, referring to nothing before the piece. Such pieces concatenate into one valid
//! deflate stream; a final empty block closes it, and the trailer's CRC-32 is the pieces'
//! CRCs combined.

use bytes::Bytes;
use flate2::{Compress, Compression, Crc, FlushCompress, Status};

/// Raw deflate of some bytes, sync-flushed, with their CRC-32 and length.
#[derive(Debug)]
pub struct Piece {
    pub deflate: Bytes,
    crc: Crc,
}

impl Piece {
    /// Level 1: HTML and JSON shrink about tenfold even so, and the cost stays a few
    /// milliseconds per megabyte.
    pub fn new(data: &[u8]) -> Piece {
        let mut c = Compress::new(Compression::fast(), false);
        let mut out = Vec::with_capacity(data.len() / 6 + 64);
        loop {
            let consumed = c.total_in() as usize;
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(4096));
            }
            // Writing to memory cannot fail; a full buffer is grown and the call repeated.
            let status = c
                .compress_vec(&data[consumed..], &mut out, FlushCompress::Sync)
                .expect("deflate to memory");
            let done = c.total_in() as usize == data.len();
            // A sync flush is complete once input is consumed and the output had room left.
            if done && out.len() < out.capacity() && status != Status::BufError {
                break;
            }
        }
        let mut crc = Crc::new();
        crc.update(data);
        Piece {
            deflate: Bytes::from(out),
            crc,
        }
    }
}

const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
/// A final, empty block with fixed codes: BFINAL=1, BTYPE=01, end-of-block.
const FINAL_BLOCK: [u8; 2] = [0x03, 0x00];

/// One gzip member of `pieces` in order, as chunks to send; cached pieces are shared.
pub fn gzip(pieces: &[&Piece]) -> Vec<Bytes> {
    let mut crc = Crc::new();
    let mut chunks = Vec::with_capacity(pieces.len() + 2);
    chunks.push(Bytes::from_static(&HEADER));
    for p in pieces {
        crc.combine(&p.crc);
        chunks.push(p.deflate.clone());
    }
    let mut tail = Vec::with_capacity(10);
    tail.extend_from_slice(&FINAL_BLOCK);
    tail.extend_from_slice(&crc.sum().to_le_bytes());
    // ISIZE is the length modulo 2^32, which is what `amount` keeps.
    tail.extend_from_slice(&crc.amount().to_le_bytes());
    chunks.push(Bytes::from(tail));
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    fn gunzip_single_member(chunks: &[Bytes]) -> Vec<u8> {
        let body: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
        let mut d = flate2::read::GzDecoder::new(&body[..]);
        let mut out = Vec::new();
        d.read_to_end(&mut out).unwrap();
        // Nothing after the one member.
        assert_eq!(d.into_inner().len(), 0);
        out
    }

    #[test]
    fn pieces_make_one_gzip_member() {
        let big: Vec<u8> = (0..200_000u32)
            .flat_map(|i| format!("<tr><td>{i}</td><td>stream-{}</td></tr>", i % 97).into_bytes())
            .collect();
        let head = Piece::new(b"<!doctype html><table>");
        let rows = Piece::new(&big);
        let empty = Piece::new(b"");
        let tail = Piece::new(b"</table>\n");
        let out = gunzip_single_member(&gzip(&[&head, &rows, &empty, &tail]));
        let mut want = b"<!doctype html><table>".to_vec();
        want.extend_from_slice(&big);
        want.extend_from_slice(b"</table>\n");
        assert_eq!(out, want);
        assert!(rows.deflate.len() < big.len() / 5, "{}", rows.deflate.len());
        assert_eq!(gunzip_single_member(&gzip(&[])), b"");
    }
}
