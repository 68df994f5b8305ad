//! Sequences, sets and maps (a varint count, then the elements) and fixed arrays (no count).

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque},
    hash::{BuildHasher, Hash},
};

use bytes::BytesMut;

use super::{container_schema, refuse_open_ended};
use crate::message::{
    DecodeError, DecodeErrorKind, LengthPrefixed, Message, Reader, Schema, put_varint_u64,
    varint_len_u64,
};

impl<T: Message> Message for Vec<T> {
    const SHAPE: &'static str = "Vec";
    const MIN_LEN: usize = 1;
    const OPEN_ENDED: bool = T::OPEN_ENDED;
    const SCHEMA: &'static Schema = container_schema!("Vec", T);

    #[inline]
    fn encoded_len(&self) -> usize {
        varint_len_u64(self.len() as u64) + T::__slice_len(self)
    }

    #[inline]
    fn encode(&self, dst: &mut BytesMut) {
        put_varint_u64(dst, self.len() as u64);
        T::__encode_slice(self, dst);
    }

    #[inline]
    fn decode(src: &mut Reader) -> Result<Self, DecodeError> {
        refuse_open_ended!(T::OPEN_ENDED, "an element of a Vec");
        let len = src.read_seq_len::<T>("Vec")?;
        T::__decode_vec(src, len)
    }
}

impl<T: Message> LengthPrefixed for Vec<T> {}

impl<T: Message> Message for VecDeque<T> {
    const SHAPE: &'static str = "VecDeque";
    const MIN_LEN: usize = 1;
    const OPEN_ENDED: bool = T::OPEN_ENDED;
    const SCHEMA: &'static Schema = container_schema!("VecDeque", T);

    fn encoded_len(&self) -> usize {
        let (a, b) = self.as_slices();
        varint_len_u64(self.len() as u64) + T::__slice_len(a) + T::__slice_len(b)
    }

    fn encode(&self, dst: &mut BytesMut) {
        put_varint_u64(dst, self.len() as u64);
        let (a, b) = self.as_slices();
        T::__encode_slice(a, dst);
        T::__encode_slice(b, dst);
    }

    #[inline]
    fn decode(src: &mut Reader) -> Result<Self, DecodeError> {
        refuse_open_ended!(T::OPEN_ENDED, "an element of a VecDeque");
        let len = src.read_seq_len::<T>("VecDeque")?;
        T::__decode_vec(src, len).map(VecDeque::from)
    }
}

impl<T: Message> LengthPrefixed for VecDeque<T> {}

impl<T: Message, const N: usize> Message for [T; N] {
    const SHAPE: &'static str = "array";
    const MIN_LEN: usize = T::MIN_LEN.saturating_mul(N);
    const OPEN_ENDED: bool = T::OPEN_ENDED;
    const SCHEMA: &'static Schema = container_schema!("array", T);

    #[inline]
    fn encoded_len(&self) -> usize {
        T::__slice_len(self)
    }

    #[inline]
    fn encode(&self, dst: &mut BytesMut) {
        T::__encode_slice(self, dst);
    }

    #[inline]
    fn decode(src: &mut Reader) -> Result<Self, DecodeError> {
        refuse_open_ended!(N > 1 && T::OPEN_ENDED, "an element of an array");
        // Through a Vec: building an array element by element needs no unsafe this way.
        let start = src.offset();
        let items = T::__decode_vec(src, N)?;
        items.try_into().map_err(|_| {
            DecodeError::new(
                DecodeErrorKind::Invalid("array length mismatch"),
                "array",
                start,
            )
        })
    }
}

impl<T: Message + Ord> Message for BTreeSet<T> {
    const SHAPE: &'static str = "BTreeSet";
    const MIN_LEN: usize = 1;
    const OPEN_ENDED: bool = T::OPEN_ENDED;
    const SCHEMA: &'static Schema = container_schema!("BTreeSet", T);

    fn encoded_len(&self) -> usize {
        varint_len_u64(self.len() as u64) + self.iter().map(T::encoded_len).sum::<usize>()
    }

    fn encode(&self, dst: &mut BytesMut) {
        put_varint_u64(dst, self.len() as u64);
        self.iter().for_each(|item| item.encode(dst));
    }

    #[inline]
    fn decode(src: &mut Reader) -> Result<Self, DecodeError> {
        refuse_open_ended!(T::OPEN_ENDED, "an element of a BTreeSet");
        let len = src.read_seq_len::<T>("BTreeSet")?;
        let mut out = BTreeSet::new();
        for _ in 0..len {
            out.insert(T::decode(src)?);
        }
        Ok(out)
    }
}

impl<T: Message + Ord> LengthPrefixed for BTreeSet<T> {}

impl<T, S> Message for HashSet<T, S>
where
    T: Message + Eq + Hash,
    S: BuildHasher + Default,
{
    const SHAPE: &'static str = "HashSet";
    const MIN_LEN: usize = 1;
    const OPEN_ENDED: bool = T::OPEN_ENDED;
    const SCHEMA: &'static Schema = container_schema!("HashSet", T);

    fn encoded_len(&self) -> usize {
        varint_len_u64(self.len() as u64) + self.iter().map(T::encoded_len).sum::<usize>()
    }

    fn encode(&self, dst: &mut BytesMut) {
        put_varint_u64(dst, self.len() as u64);
        self.iter().for_each(|item| item.encode(dst));
    }

    #[inline]
    fn decode(src: &mut Reader) -> Result<Self, DecodeError> {
        refuse_open_ended!(T::OPEN_ENDED, "an element of a HashSet");
        let len = src.read_seq_len::<T>("HashSet")?;
        let cap = src.capacity_for::<T>(len);
        let mut out = HashSet::with_capacity_and_hasher(cap, S::default());
        for _ in 0..len {
            out.insert(T::decode(src)?);
        }
        Ok(out)
    }
}

impl<T, S> LengthPrefixed for HashSet<T, S>
where
    T: Message + Eq + Hash,
    S: BuildHasher + Default,
{
}

/// The length of a map on the wire: a varint count, then each key followed by its value.
fn map_encoded_len<'a, K: Message + 'a, V: Message + 'a>(
    len: usize,
    entries: impl Iterator<Item = (&'a K, &'a V)>,
) -> usize {
    varint_len_u64(len as u64)
        + entries
            .map(|(k, v)| k.encoded_len() + v.encoded_len())
            .sum::<usize>()
}

/// Writes a map: a varint count, then each key followed by its value.
fn encode_map<'a, K: Message + 'a, V: Message + 'a>(
    len: usize,
    entries: impl Iterator<Item = (&'a K, &'a V)>,
    dst: &mut BytesMut,
) {
    put_varint_u64(dst, len as u64);
    for (k, v) in entries {
        k.encode(dst);
        v.encode(dst);
    }
}

impl<K: Message + Ord, V: Message> Message for BTreeMap<K, V> {
    const SHAPE: &'static str = "BTreeMap";
    const MIN_LEN: usize = 1;
    const OPEN_ENDED: bool = K::OPEN_ENDED || V::OPEN_ENDED;
    const SCHEMA: &'static Schema = container_schema!("BTreeMap", K, V);

    fn encoded_len(&self) -> usize {
        map_encoded_len(self.len(), self.iter())
    }

    fn encode(&self, dst: &mut BytesMut) {
        encode_map(self.len(), self.iter(), dst);
    }

    #[inline]
    fn decode(src: &mut Reader) -> Result<Self, DecodeError> {
        refuse_open_ended!(
            K::OPEN_ENDED || V::OPEN_ENDED,
            "a key or value of a BTreeMap"
        );
        let len = src.read_seq_len::<(K, V)>("BTreeMap")?;
        let mut out = BTreeMap::new();
        for _ in 0..len {
            let k = K::decode(src)?;
            let v = V::decode(src)?;
            out.insert(k, v);
        }
        Ok(out)
    }
}

impl<K: Message + Ord, V: Message> LengthPrefixed for BTreeMap<K, V> {}

impl<K, V, S> Message for HashMap<K, V, S>
where
    K: Message + Eq + Hash,
    V: Message,
    S: BuildHasher + Default,
{
    const SHAPE: &'static str = "HashMap";
    const MIN_LEN: usize = 1;
    const OPEN_ENDED: bool = K::OPEN_ENDED || V::OPEN_ENDED;
    const SCHEMA: &'static Schema = container_schema!("HashMap", K, V);

    fn encoded_len(&self) -> usize {
        map_encoded_len(self.len(), self.iter())
    }

    fn encode(&self, dst: &mut BytesMut) {
        encode_map(self.len(), self.iter(), dst);
    }

    #[inline]
    fn decode(src: &mut Reader) -> Result<Self, DecodeError> {
        refuse_open_ended!(
            K::OPEN_ENDED || V::OPEN_ENDED,
            "a key or value of a HashMap"
        );
        let len = src.read_seq_len::<(K, V)>("HashMap")?;
        let cap = src.capacity_for::<(K, V)>(len);
        let mut out = HashMap::with_capacity_and_hasher(cap, S::default());
        for _ in 0..len {
            let k = K::decode(src)?;
            let v = V::decode(src)?;
            out.insert(k, v);
        }
        Ok(out)
    }
}

impl<K, V, S> LengthPrefixed for HashMap<K, V, S>
where
    K: Message + Eq + Hash,
    V: Message,
    S: BuildHasher + Default,
{
}
