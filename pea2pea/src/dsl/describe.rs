//! The [`Description`] of a declared protocol that the DSL handshake sends: its name, framing,
//! message types and rpc lines, with every type as a node of one flat graph built from
//! [`Message::SCHEMA`](crate::Message::SCHEMA). Types refer to each other by index, so a
//! recursive type is a cycle in the graph rather than an endless value. `compat.rs` compares
//! two descriptions.

use std::collections::HashMap;

use crate::message::{FieldSchema, Schema, SchemaFn, SchemaKind};

/// The most types a description holds; a declaration with more sends none (and its peers fall
/// back to comparing fingerprints).
pub(crate) const MAX_TYPES: usize = 4096;

/// What `protocol!` declares, as the handshake needs it (built by the generated code).
#[derive(Clone, Copy)]
pub struct Declared {
    /// [`Protocol::FINGERPRINT`](super::Protocol::FINGERPRINT).
    pub fingerprint: u64,
    /// [`Protocol::NAME`](super::Protocol::NAME), for messages.
    pub display: &'static str,
    /// The explicit `name = "..."`, or `""`.
    pub name: &'static str,
    /// `version = N` (1 by default).
    pub version: u32,
    /// `accepts = A..=B`, inclusive (every version by default).
    pub accepts: (u32, u32),
    /// The framing's code, as hashed into the fingerprint.
    pub framing: u64,
    /// The inbound message type's schema, if the node reads.
    pub inbound: Option<SchemaFn>,
    /// The outbound message type's schema, if the node writes.
    pub outbound: Option<SchemaFn>,
    /// The rpc lines.
    pub rpcs: &'static [DeclaredRpc],
}

/// One `rpc` line of a declaration.
#[derive(Clone, Copy)]
pub struct DeclaredRpc {
    /// The request type as written, its leading path stripped: what the method id hashes.
    pub name: &'static str,
    /// The request's schema.
    pub request: SchemaFn,
    /// The response's schema.
    pub response: SchemaFn,
    /// Whether this node serves it (the line has a handler), rather than only calling it.
    pub served: bool,
}

/// A protocol as one peer declares it.
#[derive(crate::Message, Debug, Clone, PartialEq)]
#[message(crate = "crate")]
pub(crate) struct Description {
    /// The explicit protocol name (may be empty).
    #[message(max_len = 255)]
    pub(crate) name: String,
    /// The framing's code.
    pub(crate) framing: u64,
    /// Indices into `types`.
    pub(crate) inbound: Option<u32>,
    pub(crate) outbound: Option<u32>,
    #[message(max_len = 1024)]
    pub(crate) rpcs: Vec<RpcLine>,
    #[message(max_len = 4096)]
    pub(crate) types: Vec<TypeNode>,
}

/// One rpc line; the types are indices into the description's `types`.
#[derive(crate::Message, Debug, Clone, PartialEq)]
#[message(crate = "crate")]
pub(crate) struct RpcLine {
    #[message(max_len = 255)]
    pub(crate) name: String,
    pub(crate) request: u32,
    pub(crate) response: u32,
    pub(crate) served: bool,
}

/// One type of the graph.
#[derive(crate::Message, Debug, Clone, PartialEq)]
#[message(crate = "crate")]
pub(crate) struct TypeNode {
    #[message(max_len = 255)]
    pub(crate) name: String,
    pub(crate) kind: NodeKind,
    #[message(max_len = 64)]
    pub(crate) params: Vec<u32>,
}

/// What a type is made of (see [`SchemaKind`]).
#[derive(crate::Message, Debug, Clone, PartialEq)]
#[message(crate = "crate")]
pub(crate) enum NodeKind {
    Opaque,
    Struct {
        #[message(max_len = 1024)]
        fields: Vec<Field>,
        extensible: bool,
    },
    Enum {
        #[message(max_len = 1024)]
        variants: Vec<Variant>,
        catch_all: bool,
        extensible: bool,
    },
}

#[derive(crate::Message, Debug, Clone, PartialEq)]
#[message(crate = "crate")]
pub(crate) struct Field {
    #[message(max_len = 255)]
    pub(crate) name: String,
    pub(crate) ty: u32,
    pub(crate) default: bool,
}

#[derive(crate::Message, Debug, Clone, PartialEq)]
#[message(crate = "crate")]
pub(crate) struct Variant {
    #[message(max_len = 255)]
    pub(crate) name: String,
    pub(crate) tag: u32,
    #[message(max_len = 1024)]
    pub(crate) fields: Vec<Field>,
}

/// Builds the graph: each schema is interned once (by address: a schema met again at another
/// address only costs a duplicate node, and `MAX_TYPES` ends even a walk that keeps meeting
/// new addresses), then filled in from a work list, so nothing recurses.
#[derive(Default)]
struct Builder {
    seen: HashMap<usize, u32>,
    types: Vec<TypeNode>,
    pending: Vec<(u32, &'static Schema)>,
}

impl Builder {
    fn intern(&mut self, schema: SchemaFn) -> Option<u32> {
        let schema = schema();
        let key = std::ptr::from_ref(schema) as usize;
        if let Some(&index) = self.seen.get(&key) {
            return Some(index);
        }
        if self.types.len() >= MAX_TYPES {
            return None;
        }
        let index = u32::try_from(self.types.len()).ok()?;
        self.seen.insert(key, index);
        self.types.push(TypeNode {
            name: clip(schema.name),
            kind: NodeKind::Opaque,
            params: Vec::new(),
        });
        self.pending.push((index, schema));
        Some(index)
    }

    fn fields(&mut self, fields: &'static [FieldSchema]) -> Option<Vec<Field>> {
        fields
            .iter()
            .map(|f| {
                Some(Field {
                    name: clip(f.name),
                    ty: self.intern(f.schema)?,
                    default: f.default,
                })
            })
            .collect()
    }

    /// Fills in every interned type, interning what they refer to.
    fn finish(&mut self) -> Option<()> {
        while let Some((index, schema)) = self.pending.pop() {
            let params = schema
                .params
                .iter()
                .map(|p| self.intern(*p))
                .collect::<Option<Vec<_>>>()?;
            let kind = match schema.kind {
                SchemaKind::Opaque => NodeKind::Opaque,
                SchemaKind::Struct { fields, extensible } => NodeKind::Struct {
                    fields: self.fields(fields)?,
                    extensible,
                },
                SchemaKind::Enum {
                    variants,
                    catch_all,
                    extensible,
                    ..
                } => NodeKind::Enum {
                    variants: variants
                        .iter()
                        .map(|v| {
                            Some(Variant {
                                name: clip(v.name),
                                tag: v.tag,
                                fields: self.fields(v.fields)?,
                            })
                        })
                        .collect::<Option<_>>()?,
                    catch_all: catch_all.is_some(),
                    extensible,
                },
            };
            let node = &mut self.types[index as usize];
            node.kind = kind;
            node.params = params;
        }
        Some(())
    }
}

/// Names longer than a description carries are cut (at a character boundary).
fn clip(name: &str) -> String {
    let mut end = name.len().min(255);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_owned()
}

/// Describes a declaration; `None` if it has more than [`MAX_TYPES`] types.
pub(crate) fn describe(declared: &Declared) -> Option<Description> {
    let mut b = Builder::default();
    let mut message = |schema: Option<SchemaFn>| match schema {
        Some(schema) => b.intern(schema).map(Some),
        None => Some(None),
    };
    let inbound = message(declared.inbound)?;
    let outbound = message(declared.outbound)?;
    let rpcs = declared
        .rpcs
        .iter()
        .map(|rpc| {
            Some(RpcLine {
                name: clip(rpc.name),
                request: b.intern(rpc.request)?,
                response: b.intern(rpc.response)?,
                served: rpc.served,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    b.finish()?;
    Some(Description {
        name: clip(declared.name),
        framing: declared.framing,
        inbound,
        outbound,
        rpcs,
        types: b.types,
    })
}

impl Description {
    /// Checks that every index in a received description names one of its types.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let n = self.types.len();
        let check = |index: u32, what: &dyn Fn() -> String| {
            if (index as usize) < n {
                Ok(())
            } else {
                Err(format!(
                    "{} refers to type {index}, and the description has {n}",
                    what()
                ))
            }
        };
        for (which, index) in [("inbound", self.inbound), ("outbound", self.outbound)] {
            if let Some(index) = index {
                check(index, &|| format!("its {which} message type"))?;
            }
        }
        for (i, rpc) in self.rpcs.iter().enumerate() {
            if self.rpcs[..i].iter().any(|r| r.name == rpc.name) {
                return Err(format!("it lists `rpc {}` twice", rpc.name));
            }
            check(rpc.request, &|| format!("`rpc {}`'s request", rpc.name))?;
            check(rpc.response, &|| format!("`rpc {}`'s response", rpc.name))?;
        }
        for ty in &self.types {
            for &param in &ty.params {
                check(param, &|| format!("a parameter of `{}`", ty.name))?;
            }
            let fields: Vec<&Field> = match &ty.kind {
                NodeKind::Opaque => Vec::new(),
                NodeKind::Struct { fields, .. } => fields.iter().collect(),
                NodeKind::Enum { variants, .. } => {
                    variants.iter().flat_map(|v| v.fields.iter()).collect()
                }
            };
            for field in fields {
                check(field.ty, &|| format!("`{}.{}`", ty.name, field.name))?;
            }
        }
        Ok(())
    }

    /// The type at `index` as Rust would write it (`Option<String>`), cut short when deep.
    pub(crate) fn render(&self, index: u32) -> String {
        let mut out = String::new();
        self.render_into(index, 0, &mut out);
        out
    }

    fn render_into(&self, index: u32, depth: usize, out: &mut String) {
        let Some(ty) = self.types.get(index as usize) else {
            out.push('?');
            return;
        };
        if depth > 4 {
            out.push_str("..");
            return;
        }
        let tuple = ty.name == "tuple";
        if !tuple {
            out.push_str(&ty.name);
        }
        if ty.params.is_empty() {
            if tuple {
                out.push_str("()");
            }
            return;
        }
        out.push(if tuple { '(' } else { '<' });
        for (i, &param) in ty.params.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            self.render_into(param, depth + 1, out);
        }
        out.push(if tuple { ')' } else { '>' });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Message, message::schema_of};

    #[derive(crate::Message)]
    #[message(crate = "crate")]
    struct Tree {
        label: String,
        children: Vec<Tree>,
    }

    fn declared(inbound: SchemaFn) -> Declared {
        Declared {
            fingerprint: 0,
            display: "t",
            name: "t",
            version: 1,
            accepts: (1, 1),
            framing: 8,
            inbound: Some(inbound),
            outbound: None,
            rpcs: &[],
        }
    }

    #[test]
    fn a_recursive_type_is_a_cycle() {
        let d = describe(&declared(schema_of::<Tree>)).unwrap();
        d.validate().unwrap();
        // Tree, String, Vec<Tree>: Tree is met again and not described twice
        assert!(d.types.len() <= 4, "{:?}", d.types);
        let NodeKind::Struct { fields, .. } = &d.types[0].kind else {
            panic!()
        };
        assert_eq!(d.render(fields[1].ty), "Vec<Tree>");
        let round = Description::from_bytes(d.to_bytes()).unwrap();
        assert_eq!(round, d);
    }

    #[test]
    fn an_index_out_of_range_is_named() {
        let mut d = describe(&declared(schema_of::<Tree>)).unwrap();
        d.inbound = Some(99);
        let err = d.validate().unwrap_err();
        assert!(
            err.contains("inbound message type refers to type 99"),
            "{err}"
        );
    }

    #[test]
    fn tuples_render_as_rust_writes_them() {
        let d = describe(&declared(schema_of::<(u8, Option<String>)>)).unwrap();
        assert_eq!(d.render(d.inbound.unwrap()), "(u8, Option<String>)");
    }
}
