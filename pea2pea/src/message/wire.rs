//! Encoding primitives of the wire format: LEB128 varints and zigzag.

use bytes::{BufMut, BytesMut};

/// The number of bytes the varint of `v` takes (1 to 10).
///
/// ```
/// use bytes::BytesMut;
/// use pea2pea::message::{put_varint_u64, varint_len_u64};
///
/// let mut dst = BytesMut::new();
/// put_varint_u64(&mut dst, 300);
/// assert_eq!(&dst[..], &[0xac, 0x02]); // 7 bits a byte, low bits first
/// assert_eq!(varint_len_u64(300), 2);
/// assert_eq!(varint_len_u64(0), 1);
/// assert_eq!(varint_len_u64(u64::MAX), 10);
/// ```
#[inline]
pub const fn varint_len_u64(v: u64) -> usize {
    // 7 payload bits per byte; `| 1` makes zero take one byte.
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// The number of bytes the varint of `v` takes (1 to 19).
#[inline]
pub const fn varint_len_u128(v: u128) -> usize {
    let bits = 128 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Appends the LEB128 varint of `v` (see [`varint_len_u64`] for an example).
#[inline]
pub fn put_varint_u64(dst: &mut BytesMut, mut v: u64) {
    if v < 0x80 {
        dst.put_u8(v as u8);
        return;
    }
    let mut buf = [0u8; 10];
    let mut n = 0;
    while v >= 0x80 {
        buf[n] = (v as u8) | 0x80;
        v >>= 7;
        n += 1;
    }
    buf[n] = v as u8;
    dst.extend_from_slice(&buf[..=n]);
}

/// Appends the LEB128 varint of `v`.
pub fn put_varint_u128(dst: &mut BytesMut, mut v: u128) {
    let mut buf = [0u8; 19];
    let mut n = 0;
    while v >= 0x80 {
        buf[n] = (v as u8) | 0x80;
        v >>= 7;
        n += 1;
    }
    buf[n] = v as u8;
    dst.extend_from_slice(&buf[..=n]);
}

/// Maps a signed integer to an unsigned one so that small magnitudes stay small.
///
/// ```
/// use pea2pea::message::{unzigzag_i64, zigzag_i64};
///
/// assert_eq!([0, -1, 1, -2].map(zigzag_i64), [0, 1, 2, 3]);
/// assert_eq!(unzigzag_i64(zigzag_i64(i64::MIN)), i64::MIN);
/// ```
#[inline]
pub const fn zigzag_i64(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// The inverse of [`zigzag_i64`].
#[inline]
pub const fn unzigzag_i64(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Maps a signed integer to an unsigned one so that small magnitudes stay small.
#[inline]
pub const fn zigzag_i128(v: i128) -> u128 {
    ((v << 1) ^ (v >> 127)) as u128
}

/// The inverse of [`zigzag_i128`].
#[inline]
pub const fn unzigzag_i128(v: u128) -> i128 {
    ((v >> 1) as i128) ^ -((v & 1) as i128)
}

/// A stable 64-bit FNV-1a hash of a shape string, usable in `const` context: the basis of
/// [`Message::FINGERPRINT`](super::Message::FINGERPRINT).
///
/// ```
/// use pea2pea::message::{Message, fingerprint};
///
/// const PING: u64 = fingerprint("struct Ping(u64)");
/// assert_ne!(PING, fingerprint("struct Ping(u32)"));
/// assert_eq!(<u32 as Message>::FINGERPRINT, fingerprint("u32"));
/// ```
pub const fn fingerprint(shape: &str) -> u64 {
    let bytes = shape.as_bytes();
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}
