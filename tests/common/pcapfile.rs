//! Writes classic pcap and pcapng files by hand, so tests control every byte libpcap reads back.

use std::io::Write;
use std::path::Path;

/// One record: timestamp (µs since the epoch), captured bytes, length on the wire.
pub type Record = (i64, Vec<u8>, u32);

/// A classic little-endian microsecond pcap file with `linktype`.
pub fn write_pcap(path: &Path, linktype: u32, records: &[Record]) {
    let mut out = Vec::new();
    out.extend(0xa1b2_c3d4u32.to_le_bytes());
    out.extend(2u16.to_le_bytes());
    out.extend(4u16.to_le_bytes());
    out.extend(0i32.to_le_bytes());
    out.extend(0u32.to_le_bytes());
    out.extend(65_535u32.to_le_bytes());
    out.extend(linktype.to_le_bytes());
    for (ts, data, wire_len) in records {
        out.extend(u32::try_from(ts / 1_000_000).unwrap().to_le_bytes());
        out.extend(u32::try_from(ts % 1_000_000).unwrap().to_le_bytes());
        out.extend(u32::try_from(data.len()).unwrap().to_le_bytes());
        out.extend(wire_len.to_le_bytes());
        out.extend(data);
    }
    std::fs::File::create(path).unwrap().write_all(&out).unwrap();
}

fn block(kind: u32, body: &[u8]) -> Vec<u8> {
    let padded = body.len().div_ceil(4) * 4;
    let total = u32::try_from(12 + padded).unwrap();
    let mut b = Vec::new();
    b.extend(kind.to_le_bytes());
    b.extend(total.to_le_bytes());
    b.extend(body);
    b.resize(8 + padded, 0);
    b.extend(total.to_le_bytes());
    b
}

/// A pcapng file: section header, one interface (microsecond timestamps) and enhanced packet blocks.
pub fn write_pcapng(path: &Path, linktype: u16, records: &[Record]) {
    let mut out = Vec::new();
    let mut shb = Vec::new();
    shb.extend(0x1a2b_3c4du32.to_le_bytes());
    shb.extend(1u16.to_le_bytes());
    shb.extend(0u16.to_le_bytes());
    shb.extend((-1i64).to_le_bytes());
    out.extend(block(0x0a0d_0d0a, &shb));
    let mut idb = Vec::new();
    idb.extend(linktype.to_le_bytes());
    idb.extend(0u16.to_le_bytes());
    idb.extend(65_535u32.to_le_bytes());
    out.extend(block(1, &idb));
    for (ts, data, wire_len) in records {
        let ts = u64::try_from(*ts).unwrap();
        let mut epb = Vec::new();
        epb.extend(0u32.to_le_bytes());
        epb.extend(u32::try_from(ts >> 32).unwrap().to_le_bytes());
        epb.extend(u32::try_from(ts & 0xffff_ffff).unwrap().to_le_bytes());
        epb.extend(u32::try_from(data.len()).unwrap().to_le_bytes());
        epb.extend(wire_len.to_le_bytes());
        epb.extend(data);
        out.extend(block(6, &epb));
    }
    std::fs::File::create(path).unwrap().write_all(&out).unwrap();
}
