//! Tuples of up to 12 elements: the elements in order.

use bytes::BytesMut;

use super::{container_schema, refuse_open_ended};
use crate::message::{DecodeError, Message, Reader, Schema};

/// Whether any but the last of a tuple's elements is open-ended (none may be).
const fn open_before_last(open: &[bool]) -> bool {
    let mut i = 0;
    while i + 1 < open.len() {
        if open[i] {
            return true;
        }
        i += 1;
    }
    false
}

macro_rules! tuple {
    ($($name:ident . $idx:tt),+) => {
        impl<$($name: Message),+> Message for ($($name,)+) {
            const SHAPE: &'static str = "tuple";
            const MIN_LEN: usize = 0usize $(.saturating_add($name::MIN_LEN))+;
            // Only the last element may be open-ended: it ends where the tuple does.
            const OPEN_ENDED: bool = {
                let open = [$($name::OPEN_ENDED),+];
                open[open.len() - 1]
            };
            const SCHEMA: &'static Schema = container_schema!("tuple" $(, $name)+);

            #[inline]
            fn encoded_len(&self) -> usize {
                0 $(+ self.$idx.encoded_len())+
            }

            #[inline]
            fn encode(&self, dst: &mut BytesMut) {
                $(self.$idx.encode(dst);)+
            }

            #[inline]
            fn decode(src: &mut Reader) -> Result<Self, DecodeError> {
                refuse_open_ended!(
                    open_before_last(&[$($name::OPEN_ENDED),+]),
                    "a tuple element before the last"
                );
                Ok(($($name::decode(src)?,)+))
            }
        }
    };
}

tuple!(A.0);
tuple!(A.0, B.1);
tuple!(A.0, B.1, C.2);
tuple!(A.0, B.1, C.2, D.3);
tuple!(A.0, B.1, C.2, D.3, E.4);
tuple!(A.0, B.1, C.2, D.3, E.4, F.5);
tuple!(A.0, B.1, C.2, D.3, E.4, F.5, G.6);
tuple!(A.0, B.1, C.2, D.3, E.4, F.5, G.6, H.7);
tuple!(A.0, B.1, C.2, D.3, E.4, F.5, G.6, H.7, I.8);
tuple!(A.0, B.1, C.2, D.3, E.4, F.5, G.6, H.7, I.8, J.9);
tuple!(A.0, B.1, C.2, D.3, E.4, F.5, G.6, H.7, I.8, J.9, K.10);
tuple!(A.0, B.1, C.2, D.3, E.4, F.5, G.6, H.7, I.8, J.9, K.10, L.11);
