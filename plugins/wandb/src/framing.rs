//! The `.wandb` file's framing: a 7-byte file header (`":W&B"`, u16 LE
//! `0xBEE1`, version 0), then records in LevelDB-log style. The file is cut
//! into 32 KiB blocks counted from offset 0; a record is split into chunks
//! that never cross a block, each with a 7-byte header (u32 LE CRC, u16 LE
//! length, u8 type: 1 FULL, 2 FIRST, 3 MIDDLE, 4 LAST); a block tail shorter
//! than a header is zero-padded. The CRC is plain CRC-32/IEEE (zlib's) of the
//! type byte followed by the chunk data, unmasked (unlike LevelDB and
//! TFRecord). This module knows bytes only; `proto` makes the records.

use crc::{Crc, CRC_32_ISO_HDLC};
use std::io::{self, Write};

/// The file header: magic, `0xBEE1` little-endian, version 0.
pub const FILE_HEADER: [u8; 7] = [b':', b'W', b'&', b'B', 0xE1, 0xBE, 0];
/// Block size of the log.
pub const BLOCK: usize = 32 * 1024;
/// Size of a chunk header.
pub const CHUNK_HEADER: usize = 7;

/// Chunk types.
pub const FULL: u8 = 1;
pub const FIRST: u8 = 2;
pub const MIDDLE: u8 = 3;
pub const LAST: u8 = 4;

/// CRC-32/IEEE (zlib's `crc32`; the `crc` crate's `CRC_32_ISO_HDLC`).
const IEEE: Crc<u32> = Crc::<u32>::new(&CRC_32_ISO_HDLC);

/// The CRC of `parts` one after the other.
pub fn crc32(parts: &[&[u8]]) -> u32 {
    let mut digest = IEEE.digest();
    for part in parts {
        digest.update(part);
    }
    digest.finalize()
}

/// Appends the chunks of `record` to `out`, for a log whose next byte is at
/// file offset `offset`; returns the offset after them.
pub fn frame(offset: usize, record: &[u8], out: &mut Vec<u8>) -> usize {
    let mut offset = offset;
    let mut rest = record;
    let mut first = true;
    loop {
        let left = BLOCK - offset % BLOCK;
        if left < CHUNK_HEADER {
            out.extend(std::iter::repeat_n(0u8, left));
            offset += left;
            continue;
        }
        let room = left - CHUNK_HEADER;
        let (data, tail) = rest.split_at(rest.len().min(room));
        let last = tail.is_empty();
        let kind = match (first, last) {
            (true, true) => FULL,
            (true, false) => FIRST,
            (false, false) => MIDDLE,
            (false, true) => LAST,
        };
        out.extend_from_slice(&crc32(&[&[kind], data]).to_le_bytes());
        out.extend_from_slice(&(data.len() as u16).to_le_bytes());
        out.push(kind);
        out.extend_from_slice(data);
        offset += CHUNK_HEADER + data.len();
        if last {
            return offset;
        }
        rest = tail;
        first = false;
    }
}

/// A `.wandb` log being written: each record goes out in one `write_all`.
pub struct LogWriter<W: Write> {
    out: W,
    offset: usize,
    buf: Vec<u8>,
}

impl<W: Write> LogWriter<W> {
    /// Starts a log: writes the file header.
    pub fn new(mut out: W) -> io::Result<Self> {
        out.write_all(&FILE_HEADER)?;
        Ok(LogWriter {
            out,
            offset: FILE_HEADER.len(),
            buf: Vec::new(),
        })
    }

    /// Appends one record.
    pub fn append(&mut self, record: &[u8]) -> io::Result<()> {
        self.buf.clear();
        let end = frame(self.offset, record, &mut self.buf);
        self.out.write_all(&self.buf)?;
        self.offset = end;
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads a log back, checking every CRC and chunk sequence.
    fn read_log(bytes: &[u8]) -> Vec<Vec<u8>> {
        assert_eq!(&bytes[..7], &FILE_HEADER);
        let (mut pos, mut records, mut partial) = (7, Vec::new(), None::<Vec<u8>>);
        while pos < bytes.len() {
            let left = BLOCK - pos % BLOCK;
            if left < CHUNK_HEADER {
                assert!(bytes[pos..pos + left].iter().all(|&b| b == 0), "padding");
                pos += left;
                continue;
            }
            let crc = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap());
            let len = u16::from_le_bytes(bytes[pos + 4..pos + 6].try_into().unwrap()) as usize;
            let kind = bytes[pos + 6];
            let data = &bytes[pos + 7..pos + 7 + len];
            assert_eq!(crc, crc32(&[&[kind], data]), "crc at {pos}");
            assert!(
                pos / BLOCK == (pos + 7 + len - 1) / BLOCK,
                "chunk crosses a block"
            );
            match kind {
                FULL => {
                    assert!(partial.is_none());
                    records.push(data.to_vec());
                }
                FIRST => {
                    assert!(partial.is_none());
                    partial = Some(data.to_vec());
                }
                MIDDLE => partial.as_mut().expect("MIDDLE after FIRST").extend(data),
                LAST => {
                    let mut r = partial.take().expect("LAST after FIRST");
                    r.extend(data);
                    records.push(r);
                }
                other => panic!("chunk type {other}"),
            }
            pos += 7 + len;
        }
        assert!(partial.is_none(), "unfinished record");
        records
    }

    fn write_log(records: &[Vec<u8>]) -> Vec<u8> {
        let mut w = LogWriter::new(Vec::new()).unwrap();
        for r in records {
            w.append(r).unwrap();
        }
        w.out
    }

    #[test]
    fn crc_is_zlib_crc32() {
        assert_eq!(crc32(&[b"123456789"]), 0xCBF4_3926);
        assert_eq!(crc32(&[b"1234", b"56789"]), 0xCBF4_3926);
        assert_eq!(crc32(&[b""]), 0);
    }

    #[test]
    fn header_is_magic_bee1_version_0() {
        assert_eq!(&write_log(&[]), b":W&B\xe1\xbe\x00");
    }

    #[test]
    fn small_record_is_one_full_chunk() {
        let log = write_log(&[b"abc".to_vec()]);
        assert_eq!(log.len(), 7 + 7 + 3);
        assert_eq!(log[7 + 6], FULL);
        assert_eq!(read_log(&log), vec![b"abc".to_vec()]);
    }

    #[test]
    fn big_record_is_first_middle_last() {
        let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let records = vec![b"x".to_vec(), big, b"y".to_vec()];
        let log = write_log(&records);
        assert_eq!(read_log(&log), records);
        // The second chunk starts the big record and fills block 0.
        assert_eq!(log[7 + 8 + 6], FIRST);
        assert_eq!(log[BLOCK + 6], MIDDLE);
        assert_eq!(log[2 * BLOCK + 6], MIDDLE);
        assert_eq!(log[3 * BLOCK + 6], LAST);
    }

    #[test]
    fn block_tail_shorter_than_a_header_is_padded() {
        // Leave 5 bytes in block 0: 7 (file) + 7 (chunk) + n = BLOCK - 5.
        let n = BLOCK - 5 - 14;
        let records = vec![vec![7u8; n], b"next".to_vec()];
        let log = write_log(&records);
        assert_eq!(&log[BLOCK - 5..BLOCK], &[0; 5]);
        assert_eq!(log[BLOCK + 6], FULL);
        assert_eq!(read_log(&log), records);
    }

    #[test]
    fn exactly_a_header_left_gives_an_empty_first_chunk() {
        let n = BLOCK - 7 - 14;
        let records = vec![vec![1u8; n], b"split".to_vec()];
        let log = write_log(&records);
        assert_eq!((log[BLOCK - 7 + 4], log[BLOCK - 7 + 6]), (0, FIRST));
        assert_eq!(read_log(&log), records);
    }

    #[test]
    fn records_of_every_size_near_a_block_round_trip() {
        for n in (BLOCK - 40)..(BLOCK + 10) {
            let records = vec![vec![3u8; n], vec![4u8; 9], vec![5u8; n / 2]];
            assert_eq!(read_log(&write_log(&records)), records, "size {n}");
        }
    }
}
