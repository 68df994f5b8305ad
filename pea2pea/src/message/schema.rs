//! [`Schema`]: the declared structure of a message type, as data, so that two peers can say
//! exactly where their versions of a protocol differ.

/// A type's [`Message::SCHEMA`](super::Message::SCHEMA), as a function: the form a schema
/// refers to other types in, so that recursive types need no infinite constant.
pub type SchemaFn = fn() -> &'static Schema;

/// The schema of `T`, as a [`SchemaFn`] when not called: `schema_of::<T>`.
pub fn schema_of<T: super::Message>() -> &'static Schema {
    T::SCHEMA
}

/// The declared structure of a message type: what `#[derive(Message)]` knows of it, for tools
/// that compare two versions of a protocol (a handshake that names the variant one peer lacks,
/// a schema dump). Types that are not derived are [`SchemaKind::Opaque`]: a name and the
/// schemas of their type parameters (`Vec<T>` has `T`'s).
///
/// Fields and parameters refer to other types' schemas through [`SchemaFn`]s; a walk over them
/// must remember what it has visited, since types may be recursive (`Tree` holds `Vec<Tree>`).
/// Schemas are constants: compare them by content, never by address.
///
/// ```
/// use pea2pea::{Message, message::SchemaKind};
/// use bytes::Bytes;
///
/// #[derive(Message)]
/// #[message(extensible)]
/// enum Chat {
///     Hello { name: String, #[message(default)] agent: Option<String> },
///     #[message(tag = 5)]
///     Say(String),
///     #[message(other)]
///     Unknown { tag: u32, body: Bytes },
/// }
///
/// let schema = Chat::SCHEMA;
/// assert_eq!(schema.name, "Chat");
/// let SchemaKind::Enum { variants, catch_all, extensible, .. } = schema.kind else { panic!() };
/// assert!(extensible);
/// assert_eq!(catch_all, Some("Unknown"));
/// assert_eq!((variants[1].name, variants[1].tag), ("Say", 5));
/// let agent = &variants[0].fields[1];
/// assert_eq!((agent.name, agent.ty, agent.default), ("agent", "Option<String>", true));
/// assert_eq!((agent.schema)().name, "Option");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Schema {
    /// The type's name: its identifier when derived (`Chat`), else its
    /// [`SHAPE`](super::Message::SHAPE) (`u32`, `Vec`).
    pub name: &'static str,
    /// What the type is made of.
    pub kind: SchemaKind,
    /// The schemas of the type's type parameters, in order (`Vec<T>`: `T`; `HashMap<K, V>`:
    /// `K`, `V`; a tuple: its elements; a generic derived type: its parameters).
    pub params: &'static [SchemaFn],
}

/// What a type is made of; see [`Schema`].
#[derive(Debug, Clone, Copy)]
pub enum SchemaKind {
    /// Not described beyond its name and parameters: primitives, std types, hand-written
    /// impls.
    Opaque,
    /// A derived struct.
    Struct {
        /// Its fields, in wire order.
        fields: &'static [FieldSchema],
        /// Whether it ignores bytes after its last field (`#[message(extensible)]`).
        extensible: bool,
    },
    /// A derived enum.
    Enum {
        /// Its variants, in declaration order, each with its tag; the catch-all is not one.
        variants: &'static [VariantSchema],
        /// The variant that receives unknown tags (`#[message(other)]`), if any.
        catch_all: Option<&'static str>,
        /// Tags retired from earlier versions (`#[message(reserved(...))]`).
        reserved: &'static [u32],
        /// Whether its variants ignore bytes after their last field (`#[message(extensible)]`).
        extensible: bool,
    },
}

/// One variant of a derived enum.
#[derive(Debug, Clone, Copy)]
pub struct VariantSchema {
    /// The variant's name.
    pub name: &'static str,
    /// Its tag on the wire.
    pub tag: u32,
    /// Its fields, in wire order.
    pub fields: &'static [FieldSchema],
}

/// One field of a derived struct or variant.
#[derive(Debug, Clone, Copy)]
pub struct FieldSchema {
    /// The field's name, or its index in a tuple (`"0"`).
    pub name: &'static str,
    /// Its type as written in the declaration (`Option<String>`).
    pub ty: &'static str,
    /// Its type's schema.
    pub schema: SchemaFn,
    /// Whether it may be absent at the end of the message (`#[message(default)]`).
    pub default: bool,
    /// Its `#[message(max_len = ...)]`, if any.
    pub max_len: Option<usize>,
}

impl Schema {
    /// The schema of a type that is not described further: a name, no parameters.
    pub const fn opaque(name: &'static str) -> Self {
        Self {
            name,
            kind: SchemaKind::Opaque,
            params: &[],
        }
    }
}
