//! Reads `#[node]`'s arguments and finds the field that holds the `Node`.

use proc_macro2::TokenStream;
use syn::{Data, DeriveInput, Member, Path, Type, parse::Parser};

use crate::{crate_path, errors::Errors};

/// The field to return from `Pea2Pea::node`.
pub struct NodeField {
    pub member: Member,
    pub ty: Type,
}

/// `crate = path` (default `::pea2pea`).
pub fn args(args: TokenStream, errors: &mut Errors) -> Path {
    let mut krate: Path = crate_path::default();
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("crate") {
            krate = crate_path::parse(meta.value()?)?;
            Ok(())
        } else {
            Err(meta.error(
                "unknown argument; `#[node]` takes only `crate = path`, for a renamed pea2pea (as in `#[p2p::node(crate = ::p2p)]`)",
            ))
        }
    });
    if let Err(e) = parser.parse2(args) {
        errors.push(e);
    }
    krate
}

fn is_node_type(ty: &Type) -> bool {
    match ty {
        Type::Path(p) if p.qself.is_none() => p
            .path
            .segments
            .last()
            .is_some_and(|s| s.ident == "Node" && s.arguments.is_none()),
        _ => false,
    }
}

/// Finds the `Node` field and strips the `#[node]` markers; records why when there is none.
pub fn node_field(input: &mut DeriveInput, errors: &mut Errors) -> Option<NodeField> {
    let name = input.ident.clone();
    let fields = match &mut input.data {
        Data::Struct(data) => &mut data.fields,
        Data::Enum(data) => {
            errors.at(
                data.enum_token,
                format!("`#[node]` goes on a struct that holds a `Node`, and `{name}` is an enum; wrap it: `struct {name}Node {{ node: Node, state: {name} }}`"),
            );
            return None;
        }
        Data::Union(data) => {
            errors.at(
                data.union_token,
                "`#[node]` goes on a struct that holds a `Node`, not on a union",
            );
            return None;
        }
    };
    let mut marked = Vec::new();
    let mut typed = Vec::new();
    for (i, field) in fields.iter_mut().enumerate() {
        let member = field
            .ident
            .clone()
            .map_or_else(|| Member::from(i), Member::from);
        let before = field.attrs.len();
        field.attrs.retain(|a| !a.path().is_ident("node"));
        if field.attrs.len() != before {
            marked.push((member.clone(), field.ty.clone()));
        }
        if is_node_type(&field.ty) {
            typed.push((member, field.ty.clone()));
        }
    }
    let (member, ty) = match (marked.len(), typed.len()) {
        (1, _) => marked.remove(0),
        (0, 1) => typed.remove(0),
        (0, 0) => {
            errors.at(
                &input.ident,
                format!("`{name}` has no `Node` field; add one, as in `node: pea2pea::Node`, or mark the field that holds it with `#[node]`"),
            );
            return None;
        }
        (0, _) => {
            for (member, _) in &typed[1..] {
                errors.at(
                    member,
                    format!("`{name}` has more than one `Node` field; mark the one `Pea2Pea::node` returns with `#[node]`"),
                );
            }
            return None;
        }
        _ => {
            for (member, _) in &marked[1..] {
                errors.at(
                    member,
                    "only one field can be marked `#[node]`; remove the mark from all but the node's own field",
                );
            }
            return None;
        }
    };
    Some(NodeField { member, ty })
}
