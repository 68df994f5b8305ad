//! The framed codec: header widths and byte orders, the maximum frame size, encode-once.

use bytes::{BufMut, Bytes, BytesMut};
use pea2pea::{
    Message,
    codec::{DEFAULT_MAX_FRAME_LEN, Encoded, MessageCodec, Outgoing},
};
use proptest::prelude::*;
use tokio_util::codec::{Decoder, Encoder};

#[derive(Message, Debug, PartialEq, Clone)]
enum Msg {
    Text(String),
    Blob(Bytes),
}

fn codecs() -> Vec<MessageCodec<Msg>> {
    let mut all = Vec::new();
    for width in [1, 2, 4, 8] {
        all.push(MessageCodec::new().length_width(width));
        all.push(MessageCodec::new().length_width(width).little_endian());
    }
    all
}

proptest! {
    #[test]
    fn frames_round_trip_in_every_configuration(texts in prop::collection::vec(".{0,40}", 1..5)) {
        for mut codec in codecs() {
            let mut wire = BytesMut::new();
            for text in &texts {
                codec.encode(Msg::Text(text.clone()), &mut wire).unwrap();
            }
            // Feed the stream one byte at a time: partial frames wait for more.
            let mut buf = BytesMut::new();
            let mut out = Vec::new();
            for byte in wire {
                buf.put_u8(byte);
                while let Some(msg) = codec.decode(&mut buf).unwrap() {
                    out.push(msg);
                }
            }
            let expected: Vec<_> = texts.iter().cloned().map(Msg::Text).collect();
            prop_assert_eq!(out, expected);
        }
    }
}

#[test]
fn header_layout_follows_width_and_byte_order() {
    let mut wire = BytesMut::new();
    let msg = Msg::Text("hi".into()); // body: 0, 2, b'h', b'i'
    MessageCodec::<Msg>::new()
        .encode(msg.clone(), &mut wire)
        .unwrap();
    assert_eq!(&wire[..4], &[0, 0, 0, 4]);
    wire.clear();
    MessageCodec::<Msg>::new()
        .length_width(2)
        .little_endian()
        .encode(msg, &mut wire)
        .unwrap();
    assert_eq!(&wire[..2], &[4, 0]);
}

#[test]
fn oversize_header_is_rejected_before_the_body_arrives() {
    let mut codec = MessageCodec::<Msg>::new().max_frame_len(100);
    // Only the header of a 1 GB frame: rejected at once, nothing reserved.
    let mut buf = BytesMut::from(&[0x40u8, 0, 0, 0][..]);
    let err = codec.decode(&mut buf).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    assert_eq!(
        err.to_string(),
        "peer declared a frame of 1073741824 bytes: the maximum frame size is 100 bytes"
    );
    assert!(buf.capacity() < 1024);
}

#[test]
fn max_frame_is_on_by_default_and_applies_to_sending() {
    let mut codec = MessageCodec::<Msg>::default();
    let big = Msg::Blob(Bytes::from(vec![0u8; DEFAULT_MAX_FRAME_LEN]));
    let err = codec.encode(big, &mut BytesMut::new()).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(
        err.to_string()
            .contains("maximum frame size is 1048576 bytes"),
        "{err}"
    );
    // A 1-byte header caps frames at 255 bytes whatever the maximum says.
    assert_eq!(MessageCodec::<Msg>::new().length_width(1).max_len(), 255);
}

#[test]
fn bad_bodies_are_invalid_data() {
    let mut codec = MessageCodec::<Msg>::new();
    let mut buf = BytesMut::from(&[0u8, 0, 0, 2, 9, 9][..]);
    let err = codec.decode(&mut buf).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    assert!(err.to_string().contains("unknown variant tag 9"), "{err}");
}

#[test]
fn encode_once_send_many() {
    let shared = Encoded::new(&Msg::Text("all".into()));
    let mut a = MessageCodec::<Msg>::new();
    let mut b = MessageCodec::<Msg>::new().length_width(1);
    let (mut wa, mut wb) = (BytesMut::new(), BytesMut::new());
    a.encode(shared.clone(), &mut wa).unwrap();
    b.encode(Outgoing::from(shared.clone()), &mut wb).unwrap();
    b.encode(Outgoing::from(Msg::Text("x".into())), &mut wb)
        .unwrap();
    assert_eq!(a.decode(&mut wa).unwrap(), Some(Msg::Text("all".into())));
    assert_eq!(b.decode(&mut wb).unwrap(), Some(Msg::Text("all".into())));
    assert_eq!(b.decode(&mut wb).unwrap(), Some(Msg::Text("x".into())));
    assert_eq!(shared.as_bytes(), &Msg::Text("all".into()).to_bytes());
}

#[test]
fn decoded_bytes_share_the_frame() {
    let mut codec = MessageCodec::<Msg>::new();
    let mut wire = BytesMut::new();
    codec
        .encode(Msg::Blob(Bytes::from(vec![7u8; 4096])), &mut wire)
        .unwrap();
    let start = wire.as_ptr() as usize;
    let Some(Msg::Blob(blob)) = codec.decode(&mut wire).unwrap() else {
        panic!("not a blob")
    };
    // The payload sits inside the receive buffer's memory, at its offset in the stream.
    assert_eq!(blob.as_ptr() as usize, start + 4 + 1 + 2);
}
