//! Our wire format is postcard's: for random values of every supported type, our bytes equal
//! `postcard::to_allocvec`'s, and each side decodes the other's bytes to an equal value.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque},
    fmt::Debug,
    marker::PhantomData,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6},
    sync::Arc,
    time::Duration,
};

use bytes::Bytes;
use pea2pea::{Message, message::Delimited};
use proptest::prelude::*;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// Both directions, plus `encoded_len` against the real length.
fn cross_check<T>(value: &T) -> Result<(), TestCaseError>
where
    T: Message + Serialize + DeserializeOwned + PartialEq + Debug,
{
    let ours = value.to_bytes();
    let theirs = postcard::to_allocvec(value).expect("postcard encodes");
    prop_assert_eq!(&ours[..], &theirs[..], "bytes differ for {:?}", value);
    prop_assert_eq!(value.encoded_len(), ours.len());
    let from_theirs = T::from_bytes(Bytes::from(theirs)).expect("we decode postcard's bytes");
    prop_assert_eq!(&from_theirs, value);
    let from_ours: T = postcard::from_bytes(&ours).expect("postcard decodes our bytes");
    prop_assert_eq!(&from_ours, value);
    Ok(())
}

macro_rules! cross {
    ($($name:ident: $ty:ty = $strategy:expr;)*) => {
        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]
            $(
                #[test]
                fn $name(value in $strategy) {
                    cross_check::<$ty>(&value)?;
                }
            )*
        }
    };
}

fn finite_f32() -> impl Strategy<Value = f32> {
    any::<f32>().prop_filter("NaN is not equal to itself", |f| !f.is_nan())
}

fn finite_f64() -> impl Strategy<Value = f64> {
    any::<f64>().prop_filter("NaN is not equal to itself", |f| !f.is_nan())
}

fn bytes() -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..300).prop_map(Bytes::from)
}

/// serde sends only the address and port of a V6 socket address; flowinfo and scope id are 0.
fn socket_v6() -> impl Strategy<Value = SocketAddrV6> {
    (any::<Ipv6Addr>(), any::<u16>()).prop_map(|(ip, port)| SocketAddrV6::new(ip, port, 0, 0))
}

fn socket_addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        any::<SocketAddrV4>().prop_map(SocketAddr::V4),
        socket_v6().prop_map(SocketAddr::V6)
    ]
}

cross! {
    bool_: bool = any::<bool>();
    u8_: u8 = any::<u8>();
    u16_: u16 = any::<u16>();
    u32_: u32 = any::<u32>();
    u64_: u64 = any::<u64>();
    u128_: u128 = any::<u128>();
    i8_: i8 = any::<i8>();
    i16_: i16 = any::<i16>();
    i32_: i32 = any::<i32>();
    i64_: i64 = any::<i64>();
    i128_: i128 = any::<i128>();
    usize_: usize = any::<usize>();
    isize_: isize = any::<isize>();
    f32_: f32 = finite_f32();
    f64_: f64 = finite_f64();
    char_: char = any::<char>();
    string: String = any::<String>();
    bytes_: Bytes = bytes();
    vec_u8: Vec<u8> = any::<Vec<u8>>();
    vec_i64: Vec<i64> = any::<Vec<i64>>();
    vec_string: Vec<String> = any::<Vec<String>>();
    vec_deque: VecDeque<u32> = any::<VecDeque<u32>>();
    array_u8: [u8; 32] = any::<[u8; 32]>();
    array_u64: [u64; 5] = any::<[u64; 5]>();
    array_empty: [u64; 0] = Just([]);
    tuple1: (u8,) = any::<(u8,)>();
    tuple3: (u8, String, i32) = any::<(u8, String, i32)>();
    tuple12: (u8, u16, u32, u64, i8, i16, i32, i64, bool, char, String, u128) =
        (any::<(u8, u16, u32, u64, i8, i16)>(), any::<(i32, i64, bool, char, String, u128)>())
            .prop_map(|((a, b, c, d, e, f), (g, h, i, j, k, l))| (a, b, c, d, e, f, g, h, i, j, k, l));
    option: Option<u64> = any::<Option<u64>>();
    option_nested: Option<Option<String>> = any::<Option<Option<String>>>();
    boxed: Box<u32> = any::<u32>().prop_map(Box::new);
    arc: Arc<String> = any::<String>().prop_map(Arc::new);
    hash_map: HashMap<u16, String> = any::<HashMap<u16, String>>();
    btree_map: BTreeMap<String, Vec<u8>> = any::<BTreeMap<String, Vec<u8>>>();
    hash_set: HashSet<i32> = any::<HashSet<i32>>();
    btree_set: BTreeSet<u64> = any::<BTreeSet<u64>>();
    unit: () = Just(());
    vec_unit: Vec<()> = prop::collection::vec(Just(()), 0..100);
    phantom: PhantomData<String> = Just(PhantomData);
    ipv4: Ipv4Addr = any::<Ipv4Addr>();
    ipv6: Ipv6Addr = any::<Ipv6Addr>();
    ip: IpAddr = any::<IpAddr>();
    socket_v4: SocketAddrV4 = any::<SocketAddrV4>();
    socket_v6_: SocketAddrV6 = socket_v6();
    socket: SocketAddr = socket_addr();
    duration: Duration = (any::<u64>(), 0..1_000_000_000u32).prop_map(|(s, n)| Duration::new(s, n));
}

#[derive(Message, Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Named {
    a: u8,
    b: i64,
    c: String,
    d: Vec<u16>,
    e: Option<bool>,
    f: f64,
}

#[derive(Message, Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Tuple(u32, Bytes, char);

#[derive(Message, Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Unit;

#[derive(Message, Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Generic<T> {
    inner: T,
    list: Vec<T>,
}

#[derive(Message, Serialize, Deserialize, Debug, PartialEq, Clone)]
enum Tree {
    Leaf,
    Value(u64, String),
    Node {
        left: Box<Tree>,
        right: Option<Box<Tree>>,
        unit: Unit,
    },
    Many(Vec<Tree>),
    Addr(SocketAddr, Duration),
}

#[derive(Message, Serialize, Deserialize, Debug, PartialEq, Clone)]
enum Empty {}

fn named() -> impl Strategy<Value = Named> {
    (
        any::<u8>(),
        any::<i64>(),
        any::<String>(),
        any::<Vec<u16>>(),
        any::<Option<bool>>(),
        finite_f64(),
    )
        .prop_map(|(a, b, c, d, e, f)| Named { a, b, c, d, e, f })
}

fn tree() -> impl Strategy<Value = Tree> {
    let leaf = prop_oneof![
        Just(Tree::Leaf),
        (any::<u64>(), any::<String>()).prop_map(|(n, s)| Tree::Value(n, s)),
        (socket_addr(), any::<Duration>()).prop_map(|(a, d)| Tree::Addr(a, d)),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            (inner.clone(), prop::option::of(inner.clone())).prop_map(|(l, r)| Tree::Node {
                left: Box::new(l),
                right: r.map(Box::new),
                unit: Unit,
            }),
            prop::collection::vec(inner, 0..4).prop_map(Tree::Many),
        ]
    })
}

cross! {
    derived_named: Named = named();
    derived_tuple: Tuple = (any::<u32>(), bytes(), any::<char>()).prop_map(|(a, b, c)| Tuple(a, b, c));
    derived_unit: Unit = Just(Unit);
    derived_generic: Generic<String> =
        (any::<String>(), any::<Vec<String>>()).prop_map(|(inner, list)| Generic { inner, list });
    derived_generic_nested: Generic<Named> =
        (named(), prop::collection::vec(named(), 0..4)).prop_map(|(inner, list)| Generic { inner, list });
    derived_enum: Tree = tree();
    derived_in_std: Vec<Option<Tree>> = prop::collection::vec(prop::option::of(tree()), 0..4);
}

#[test]
fn empty_enum_never_decodes() {
    let err = Empty::from_bytes(Bytes::from_static(&[0])).unwrap_err();
    assert_eq!(
        err.kind(),
        &pea2pea::message::DecodeErrorKind::UnknownVariant(0)
    );
}

#[test]
fn bytes_fields_are_slices_of_the_frame() {
    let frame = Tuple(1, Bytes::from_static(b"payload"), 'x').to_bytes();
    let decoded = Tuple::from_bytes(frame.clone()).unwrap();
    // The decoded payload points into the frame's memory: no copy was made.
    let range = frame.as_ptr_range();
    assert!(range.contains(&decoded.1.as_ptr()));
}

/// The evolution attributes change how a type decodes, never how it encodes: defaulted fields
/// are always written, and an extensible type writes the fields it has.
#[derive(Message, Serialize, Deserialize, Debug, PartialEq, Clone)]
#[message(extensible)]
struct Evolved {
    id: u64,
    #[message(default)]
    note: Option<String>,
    #[message(default)]
    tags: Vec<String>,
}

/// A catch-all encodes as the tag and body it holds: for a known tag, the same bytes as the
/// serde enum's variant.
#[derive(Message, Debug, PartialEq, Clone)]
#[message(extensible)]
enum WithCatchAll {
    Ping(u32),
    Text {
        body: String,
        #[message(default)]
        lang: Option<String>,
    },
    #[message(other)]
    Unknown(u32, Bytes),
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
enum WithoutCatchAll {
    Ping(u32),
    Text { body: String, lang: Option<String> },
}

fn evolved() -> impl Strategy<Value = Evolved> {
    (any::<u64>(), any::<Option<String>>(), any::<Vec<String>>())
        .prop_map(|(id, note, tags)| Evolved { id, note, tags })
}

cross! {
    evolved_: Evolved = evolved();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn known_variants_encode_as_postcard(n in any::<u32>(), body in any::<String>(), lang in any::<Option<String>>()) {
        let pairs = [
            (WithCatchAll::Ping(n), WithoutCatchAll::Ping(n)),
            (
                WithCatchAll::Text { body: body.clone(), lang: lang.clone() },
                WithoutCatchAll::Text { body, lang },
            ),
        ];
        for (ours, theirs) in pairs {
            let bytes = ours.to_bytes();
            prop_assert_eq!(&bytes[..], &postcard::to_allocvec(&theirs).unwrap()[..]);
            prop_assert_eq!(postcard::from_bytes::<WithoutCatchAll>(&bytes).unwrap(), theirs);
            prop_assert_eq!(WithCatchAll::from_bytes(bytes).unwrap(), ours);
        }
    }

    #[test]
    fn a_catch_all_writes_postcards_bytes_back(value in any::<u32>(), body in any::<String>()) {
        for theirs in [WithoutCatchAll::Ping(value), WithoutCatchAll::Text { body: body.clone(), lang: None }] {
            let frame = postcard::to_allocvec(&theirs).unwrap();
            // Seen through a reader that knows only tag 2 and up: every value is unknown.
            let unknown = OnlyCatchAll::from_slice(&frame).unwrap();
            prop_assert_eq!(&unknown.to_bytes()[..], &frame[..]);
        }
    }

    #[test]
    fn delimited_is_a_byte_string_of_postcard(value in evolved()) {
        let ours = Delimited(value.clone()).to_bytes();
        let inner = Bytes::from(postcard::to_allocvec(&value).unwrap());
        prop_assert_eq!(&ours[..], &postcard::to_allocvec(&inner).unwrap()[..]);
        let back = Delimited::<Evolved>::from_bytes(ours).unwrap();
        prop_assert_eq!(back.0, value);
    }
}

#[derive(Message, Debug, PartialEq)]
enum OnlyCatchAll {
    #[message(other)]
    Unknown { tag: u32, body: Bytes },
}
