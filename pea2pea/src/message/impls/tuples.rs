//! Tuples of up to 12 elements: the elements in order.

use bytes::BytesMut;

use crate::message::{DecodeError, Message, Reader};

macro_rules! tuple {
    ($($name:ident . $idx:tt),+) => {
        impl<$($name: Message),+> Message for ($($name,)+) {
            const SHAPE: &'static str = "tuple";
            const MIN_LEN: usize = 0usize $(.saturating_add($name::MIN_LEN))+;

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
