//! Whether two peers' protocols can talk, from their [`Description`]s and versions: a pure
//! function, evaluated by both sides, which check the same conditions (each side's reads
//! against the other's writes, both ways) and so reach the same verdict. The reason names the
//! differences from this node's point of view: the first one in each direction and each rpc,
//! so that both sides name the same ones.
//!
//! The rules are DSL.md's "What is safe to change": fields are positional (names are not on the
//! wire); a writer's extra trailing fields need an `extensible` reader, a reader's extra fields
//! need `default`; a writer's variant needs the reader's variant of the same tag (with
//! compatible fields) or a catch-all; opaque types are equal by name and parameters, within
//! the families the format makes interchangeable (`u16`..`u64`, `String`/`Bytes`/`Vec<u8>`,
//! sequences, maps).
//!
//! A received description is untrusted, so types are compared from a work list (no recursion,
//! however deep they nest), each pair once (recursive types end, the work is bounded by the
//! pairs of types); the verdict is "some pair of types met fails", whatever the order.

use std::collections::HashSet;

use super::describe::{Description, Field, NodeKind, RpcLine, TypeNode, Variant};

/// One side's version and accepted range (sent in its hello).
#[derive(crate::Message, Clone, Copy, Debug, PartialEq, Eq)]
#[message(crate = "crate")]
pub(crate) struct Versions {
    pub(crate) version: u32,
    pub(crate) accepts: (u32, u32),
}

/// Whether each side accepts the other's version; `name` is this node's protocol, for the
/// message.
pub(crate) fn versions_agree(name: &str, ours: Versions, theirs: Versions) -> Result<(), String> {
    let range = |(lo, hi): (u32, u32)| match hi {
        u32::MAX => format!("{lo}.."),
        hi => format!("{lo}..={hi}"),
    };
    let within = |v: u32, (lo, hi): (u32, u32)| lo <= v && v <= hi;
    if !within(theirs.version, ours.accepts) {
        return Err(format!(
            "the peer speaks version {} of `{name}`; this node accepts {}",
            theirs.version,
            range(ours.accepts)
        ));
    }
    if !within(ours.version, theirs.accepts) {
        return Err(format!(
            "this node speaks version {} of `{name}`, and the peer accepts {}",
            ours.version,
            range(theirs.accepts)
        ));
    }
    Ok(())
}

/// Whether the protocols described by `ours` and `theirs` can talk; the error names the
/// differences (the first one met in each direction and in each rpc, at most `MAX_NAMED`).
pub(crate) fn compatible(ours: &Description, theirs: &Description) -> Result<(), String> {
    if ours.name != theirs.name {
        let named = |name: &str| match name {
            "" => "has no `name`".to_owned(),
            name => format!("is named `{name}`"),
        };
        return Err(format!(
            "the peer's protocol {}, this node's {}",
            named(&theirs.name),
            named(&ours.name)
        ));
    }
    if ours.framing != theirs.framing {
        return Err(format!(
            "the peer frames its messages as {}, this node as {}",
            framing(theirs.framing),
            framing(ours.framing)
        ));
    }
    match (ours.rpcs.is_empty(), theirs.rpcs.is_empty()) {
        (false, true) => return Err(
            "this node declares rpcs (its frames carry an rpc envelope) and the peer declares none"
                .into(),
        ),
        (true, false) => return Err(
            "the peer declares rpcs (its frames carry an rpc envelope) and this node declares none"
                .into(),
        ),
        _ => {}
    }
    // every difference is named (both directions), so that both sides report the same ones
    let mut differences = Vec::new();
    let mut cmp = Compare::new(ours, theirs);
    differences.extend(
        cmp.messages(ours.inbound, theirs.outbound, Dir::WeRead)
            .err(),
    );
    differences.extend(
        cmp.messages(theirs.inbound, ours.outbound, Dir::TheyRead)
            .err(),
    );
    for rpc in &ours.rpcs {
        let found = match theirs.rpcs.iter().find(|r| r.name == rpc.name) {
            Some(peer) => cmp.rpc(rpc, peer),
            None if rpc.served => Ok(()), // the peer never calls it
            None => Err(format!("the peer serves no `rpc {}`", rpc.name)),
        };
        differences.extend(found.err());
    }
    for rpc in &theirs.rpcs {
        let ours_has = ours.rpcs.iter().any(|r| r.name == rpc.name);
        if !ours_has && !rpc.served {
            differences.push(format!(
                "the peer calls `rpc {}`, which this node does not serve",
                rpc.name
            ));
        }
    }
    // a difference that both directions meet (a field whose types differ) is named once
    let mut named = HashSet::new();
    differences.retain(|d| named.insert(d.clone()));
    match differences.len() {
        0 => Ok(()),
        n if n > MAX_NAMED => {
            differences.truncate(MAX_NAMED);
            Err(format!(
                "{}; and {} more",
                differences.join("; "),
                n - MAX_NAMED
            ))
        }
        _ => Err(differences.join("; ")),
    }
}

/// How many differences a refusal names (a hostile description could make many).
const MAX_NAMED: usize = 4;

/// The framing code of the fingerprint, in words.
fn framing(code: u64) -> String {
    match code {
        2..=17 => format!(
            "length_delimited(length_width = {}, {})",
            code / 2,
            if code % 2 == 1 {
                "little_endian"
            } else {
                "big_endian"
            }
        ),
        _ => "a custom codec".into(),
    }
}

/// Who reads, in one comparison.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dir {
    /// This node reads what the peer writes.
    WeRead,
    /// The peer reads what this node writes.
    TheyRead,
}

/// One side of a comparison: a description and a type in it.
#[derive(Clone, Copy)]
struct At<'a> {
    desc: &'a Description,
    ty: u32,
}

impl<'a> At<'a> {
    fn node(self) -> &'a TypeNode {
        &self.desc.types[self.ty as usize]
    }

    fn to(self, ty: u32) -> Self {
        Self { ty, ..self }
    }
}

/// A comparison waiting in the work list: whether `reader` decodes what `writer` encodes;
/// `path` is where the value is (`Chat::Hello.agent`), when it is a field.
struct Job<'a> {
    reader: At<'a>,
    writer: At<'a>,
    dir: Dir,
    path: Option<String>,
}

impl<'a> Job<'a> {
    /// The same comparison one level down.
    fn inner(&self, reader: u32, writer: u32, path: Option<String>) -> Self {
        Job {
            reader: self.reader.to(reader),
            writer: self.writer.to(writer),
            dir: self.dir,
            path,
        }
    }

    /// "the peer's `X` is `A`, this node's is `B`" (or, outside a field, "the peer has `A`
    /// where this node has `B`").
    fn differ(&self) -> String {
        let (peer, this) = match self.dir {
            Dir::WeRead => (self.writer, self.reader),
            Dir::TheyRead => (self.reader, self.writer),
        };
        let (theirs, ours) = (peer.desc.render(peer.ty), this.desc.render(this.ty));
        match &self.path {
            Some(path) => format!("the peer's `{path}` is `{theirs}`, this node's is `{ours}`"),
            None => format!("the peer has `{theirs}` where this node has `{ours}`"),
        }
    }
}

struct Compare<'a> {
    ours: &'a Description,
    theirs: &'a Description,
    /// (reader, writer, whether this node reads) triples already compared: each is compared
    /// once, so a recursive type ends, and the work is bounded by the pairs of types.
    met: HashSet<(u32, u32, bool)>,
}

impl<'a> Compare<'a> {
    fn new(ours: &'a Description, theirs: &'a Description) -> Self {
        Self {
            ours,
            theirs,
            met: HashSet::new(),
        }
    }

    /// The reader's and the writer's description in `dir`.
    fn sides(&self, dir: Dir) -> (&'a Description, &'a Description) {
        match dir {
            Dir::WeRead => (self.ours, self.theirs),
            Dir::TheyRead => (self.theirs, self.ours),
        }
    }

    fn messages(
        &mut self,
        read: Option<u32>,
        written: Option<u32>,
        dir: Dir,
    ) -> Result<(), String> {
        let (reader, writer) = self.sides(dir);
        match (read, written) {
            (Some(r), Some(w)) => {
                let at = |desc, ty| At { desc, ty };
                self.check(at(reader, r), at(writer, w), dir)
            }
            (None, Some(w)) => Err(match dir {
                Dir::WeRead => format!(
                    "the peer writes `{}` and this node reads no messages",
                    writer.render(w)
                ),
                Dir::TheyRead => format!(
                    "this node writes `{}` and the peer reads no messages",
                    writer.render(w)
                ),
            }),
            _ => Ok(()),
        }
    }

    /// An rpc both sides declare: the caller's request must read as the server's, and the
    /// server's response as the caller's.
    fn rpc(&mut self, ours: &RpcLine, theirs: &RpcLine) -> Result<(), String> {
        if !ours.served && !theirs.served {
            return Err(format!(
                "neither this node nor the peer serves `rpc {}`",
                ours.name
            ));
        }
        let at = |desc, ty| At { desc, ty };
        let (o, t) = (self.ours, self.theirs);
        // (whether it applies, which part, reader, writer, who reads): the server reads the
        // request, the caller reads the response
        let checks = [
            (
                ours.served,
                "request",
                at(o, ours.request),
                at(t, theirs.request),
                Dir::WeRead,
            ),
            (
                ours.served,
                "response",
                at(t, theirs.response),
                at(o, ours.response),
                Dir::TheyRead,
            ),
            (
                theirs.served,
                "request",
                at(t, theirs.request),
                at(o, ours.request),
                Dir::TheyRead,
            ),
            (
                theirs.served,
                "response",
                at(o, ours.response),
                at(t, theirs.response),
                Dir::WeRead,
            ),
        ];
        for (applies, part, reader, writer, dir) in checks {
            if applies {
                self.check(reader, writer, dir)
                    .map_err(|e| format!("in `rpc {}`'s {part}: {e}", ours.name))?;
            }
        }
        Ok(())
    }

    /// Whether `reader` decodes every value `writer` encodes, and so on for everything they
    /// contain: from a work list, not by recursion, since a peer's description may nest as
    /// deep as it likes. The verdict does not depend on the order of the work: it fails if
    /// any pair of types met fails.
    fn check(&mut self, reader: At<'a>, writer: At<'a>, dir: Dir) -> Result<(), String> {
        let mut jobs = vec![Job {
            reader,
            writer,
            dir,
            path: None,
        }];
        while let Some(job) = jobs.pop() {
            let key = (job.reader.ty, job.writer.ty, job.dir == Dir::WeRead);
            if self.met.insert(key) {
                one(&job, &mut jobs)?;
            }
        }
        Ok(())
    }
}

/// Compares the two types of `job` alone, queueing what they contain.
fn one<'a>(job: &Job<'a>, jobs: &mut Vec<Job<'a>>) -> Result<(), String> {
    let (r, w) = (job.reader.node(), job.writer.node());
    match (&r.kind, &w.kind) {
        (NodeKind::Opaque, NodeKind::Opaque) => {
            let family = family(job.reader);
            if family != self::family(job.writer) {
                return Err(job.differ());
            }
            // a byte string's parameters (`Vec<u8>`'s `u8`) are settled by its family
            if family == Family::Bytes {
                return Ok(());
            }
            if r.params.len() != w.params.len() {
                return Err(job.differ());
            }
            for (&rp, &wp) in r.params.iter().zip(&w.params) {
                jobs.push(job.inner(rp, wp, job.path.clone()));
            }
            Ok(())
        }
        (
            NodeKind::Struct {
                fields: rf,
                extensible,
            },
            NodeKind::Struct { fields: wf, .. },
        ) => {
            let f = Fields {
                reader: rf,
                writer: wf,
                extensible: *extensible,
                paths: (r.name.clone(), w.name.clone()),
            };
            fields(job, f, jobs)
        }
        (
            NodeKind::Enum {
                variants: rv,
                catch_all,
                extensible,
            },
            NodeKind::Enum { variants: wv, .. },
        ) => {
            let v = Variants {
                reader: (&r.name, rv),
                writer: (&w.name, wv),
                catch_all: *catch_all,
                extensible: *extensible,
            };
            variants(job, v, jobs)
        }
        _ => Err(job.differ()),
    }
}

/// Each writer variant: the reader's of the same tag, with compatible fields, or its
/// catch-all.
fn variants<'a>(job: &Job<'a>, v: Variants<'a>, jobs: &mut Vec<Job<'a>>) -> Result<(), String> {
    let ((r_name, rv), (w_name, wv)) = (v.reader, v.writer);
    for w_variant in wv {
        let Some(r_variant) = rv.iter().find(|r| r.tag == w_variant.tag) else {
            if v.catch_all {
                continue;
            }
            let (owner, lacker) = match job.dir {
                Dir::WeRead => ("the peer's", "this node's"),
                Dir::TheyRead => ("this node's", "the peer's"),
            };
            return Err(format!(
                "{owner} `{w_name}` has variant `{}` (tag {}), which {lacker} `{r_name}` lacks and has no catch-all for",
                w_variant.name, w_variant.tag
            ));
        };
        let f = Fields {
            reader: &r_variant.fields,
            writer: &w_variant.fields,
            extensible: v.extensible,
            paths: (
                format!("{r_name}::{}", r_variant.name),
                format!("{w_name}::{}", w_variant.name),
            ),
        };
        fields(job, f, jobs)?;
    }
    Ok(())
}

/// Positional fields: the common ones compared (queued), the writer's extra ones skipped by an
/// extensible reader, the reader's extra ones defaulted.
fn fields<'a>(job: &Job<'a>, f: Fields<'a>, jobs: &mut Vec<Job<'a>>) -> Result<(), String> {
    let (r_path, w_path) = &f.paths;
    for (rf, wf) in f.reader.iter().zip(f.writer) {
        let at = match job.dir {
            Dir::WeRead => format!("{w_path}.{}", wf.name),
            Dir::TheyRead => format!("{r_path}.{}", rf.name),
        };
        jobs.push(job.inner(rf.ty, wf.ty, Some(at)));
    }
    let (r_whose, w_whose, r_who) = match job.dir {
        Dir::WeRead => ("this node's", "the peer's", "this node"),
        Dir::TheyRead => ("the peer's", "this node's", "the peer"),
    };
    // a writer's extra fields are skipped only by an extensible reader
    let unskippable = f.writer.get(f.reader.len()).filter(|_| !f.extensible);
    if let Some(extra) = unskippable {
        return Err(format!(
            "{w_whose} `{w_path}` has field `{}` after the last one {r_who} knows, and {r_whose} `{r_path}` is not extensible",
            extra.name,
        ));
    }
    if let Some(extra) = f.reader.iter().skip(f.writer.len()).find(|r| !r.default) {
        return Err(format!(
            "{r_whose} `{r_path}` has field `{}`, which {w_whose} `{w_path}` lacks, and it is not `#[message(default)]`",
            extra.name,
        ));
    }
    Ok(())
}

/// The variants of an enum on both sides, with their type's name, and the reader's options.
struct Variants<'a> {
    reader: (&'a str, &'a [Variant]),
    writer: (&'a str, &'a [Variant]),
    catch_all: bool,
    extensible: bool,
}

/// The fields of a struct or of one variant, on both sides.
struct Fields<'a> {
    reader: &'a [Field],
    writer: &'a [Field],
    extensible: bool,
    /// The reader's and the writer's names for them (`Chat::Hello`).
    paths: (String, String),
}

/// Opaque types that encode alike.
#[derive(PartialEq, Eq)]
enum Family<'a> {
    Unsigned,
    Signed,
    Bytes,
    Sequence,
    Map,
    Named(&'a str),
}

fn family(at: At<'_>) -> Family<'_> {
    let ty = &at.desc.types[at.ty as usize];
    match ty.name.as_str() {
        "u16" | "u32" | "u64" | "u128" | "usize" => Family::Unsigned,
        "i16" | "i32" | "i64" | "i128" | "isize" => Family::Signed,
        "String" | "Bytes" => Family::Bytes,
        "Vec" if is_u8(at.desc, &ty.params) => Family::Bytes,
        "Vec" | "VecDeque" | "HashSet" | "BTreeSet" => Family::Sequence,
        "HashMap" | "BTreeMap" => Family::Map,
        other => Family::Named(other),
    }
}

fn is_u8(desc: &Description, params: &[u32]) -> bool {
    matches!(params, [p] if desc.types[*p as usize].name == "u8")
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::{
        dsl::describe::{Declared, DeclaredRpc, TypeNode, describe},
        message::{SchemaFn, schema_of},
    };

    mod v1 {
        use super::Bytes;

        #[derive(crate::Message)]
        #[message(crate = "crate", extensible)]
        pub enum Chat {
            Hello {
                name: String,
            },
            Say(String),
            #[message(other)]
            Unknown {
                tag: u32,
                body: Bytes,
            },
        }

        /// No catch-all, not extensible.
        #[derive(crate::Message)]
        #[message(crate = "crate")]
        pub enum Strict {
            Hello { name: String },
            Say(String),
        }

        #[derive(crate::Message)]
        #[message(crate = "crate")]
        pub struct Square(pub u32);

        #[derive(crate::Message)]
        #[message(crate = "crate")]
        pub struct Cube(pub u32);

        #[derive(crate::Message)]
        #[message(crate = "crate")]
        pub struct Tree {
            pub label: String,
            pub children: Vec<Tree>,
        }
    }

    mod v2 {
        use super::Bytes;

        #[derive(crate::Message)]
        #[message(crate = "crate", extensible)]
        pub enum Chat {
            Hello {
                name: String,
                #[message(default)]
                agent: Option<String>,
            },
            Say(String),
            React(char),
            #[message(other)]
            Unknown {
                tag: u32,
                body: Bytes,
            },
        }

        #[derive(crate::Message)]
        #[message(crate = "crate")]
        pub enum Strict {
            Hello { name: String },
            Say(String),
            React(char),
        }

        /// `Hello.name` changed type.
        #[derive(crate::Message)]
        #[message(crate = "crate")]
        pub enum Retyped {
            Hello { name: u8 },
            Say(String),
        }

        /// `u32` became `u64`: the same varint.
        #[derive(crate::Message)]
        #[message(crate = "crate")]
        pub struct Square(pub u64);

        #[derive(crate::Message)]
        #[message(crate = "crate")]
        pub struct Tree {
            pub name: String,
            pub kids: Vec<Tree>,
        }
    }

    fn proto(speaks: SchemaFn, rpcs: &'static [DeclaredRpc]) -> Description {
        describe(&Declared {
            fingerprint: 0,
            display: "chat",
            name: "chat",
            version: 1,
            accepts: (1, u32::MAX),
            framing: 8,
            inbound: Some(speaks),
            outbound: Some(speaks),
            rpcs,
        })
        .unwrap()
    }

    /// Both sides' verdicts, which must agree.
    fn both(a: &Description, b: &Description) -> Result<(), (String, String)> {
        match (compatible(a, b), compatible(b, a)) {
            (Ok(()), Ok(())) => Ok(()),
            (Err(x), Err(y)) => Err((x, y)),
            (x, y) => panic!("the two sides disagree: {x:?} / {y:?}"),
        }
    }

    #[test]
    fn a_compatible_change_is_accepted_both_ways() {
        let (a, b) = (
            proto(schema_of::<v1::Chat>, &[]),
            proto(schema_of::<v2::Chat>, &[]),
        );
        both(&a, &b).unwrap();
        both(&a, &a).unwrap();
        // renamed fields, a recursive type
        let (a, b) = (
            proto(schema_of::<v1::Tree>, &[]),
            proto(schema_of::<v2::Tree>, &[]),
        );
        both(&a, &b).unwrap();
    }

    #[test]
    fn a_new_variant_without_a_catch_all_is_named_from_each_side() {
        let (a, b) = (
            proto(schema_of::<v1::Strict>, &[]),
            proto(schema_of::<v2::Strict>, &[]),
        );
        let (old, new) = both(&a, &b).unwrap_err();
        assert_eq!(
            old,
            "the peer's `Strict` has variant `React` (tag 2), which this node's `Strict` lacks and has no catch-all for"
        );
        assert_eq!(
            new,
            "this node's `Strict` has variant `React` (tag 2), which the peer's `Strict` lacks and has no catch-all for"
        );
    }

    #[test]
    fn a_retyped_field_is_named() {
        let (a, b) = (
            proto(schema_of::<v1::Strict>, &[]),
            proto(schema_of::<v2::Retyped>, &[]),
        );
        let (old, _) = both(&a, &b).unwrap_err();
        assert_eq!(
            old,
            "the peer's `Retyped::Hello.name` is `u8`, this node's is `String`"
        );
    }

    #[test]
    fn extra_fields_need_extensible_readers_and_defaults() {
        #[derive(crate::Message)]
        #[message(crate = "crate")]
        struct One {
            a: u8,
        }
        #[derive(crate::Message)]
        #[message(crate = "crate")]
        struct Two {
            a: u8,
            b: u8,
        }
        let (a, b) = (proto(schema_of::<One>, &[]), proto(schema_of::<Two>, &[]));
        let (old, new) = both(&a, &b).unwrap_err();
        // each side names both directions' difference, its own reading first
        assert_eq!(
            old,
            "the peer's `Two` has field `b` after the last one this node knows, and this node's `One` is not extensible; \
             the peer's `Two` has field `b`, which this node's `One` lacks, and it is not `#[message(default)]`"
        );
        assert_eq!(
            new,
            "this node's `Two` has field `b`, which the peer's `One` lacks, and it is not `#[message(default)]`; \
             this node's `Two` has field `b` after the last one the peer knows, and the peer's `One` is not extensible"
        );
    }

    #[test]
    fn rpc_subsets() {
        const fn line(name: &'static str, request: SchemaFn, served: bool) -> DeclaredRpc {
            DeclaredRpc {
                name,
                request,
                response: schema_of::<u64>,
                served,
            }
        }
        const SERVER: &[DeclaredRpc] = &[
            line("Square", schema_of::<v1::Square>, true),
            line("Cube", schema_of::<v1::Cube>, true),
        ];
        const SQUARE_CALLER: &[DeclaredRpc] = &[line("Square", schema_of::<v2::Square>, false)];
        const CUBE_CALLER: &[DeclaredRpc] = &[line("Cube", schema_of::<v1::Cube>, false)];
        const ONLY_SQUARES: &[DeclaredRpc] = &[line("Square", schema_of::<v1::Square>, true)];
        let chat = schema_of::<v1::Chat>;
        let server = proto(chat, SERVER);
        // a client calling a subset (with a compatible request type)
        both(&proto(chat, SQUARE_CALLER), &server).unwrap();
        // a client calling an rpc the peer does not serve
        let (client, srv) =
            both(&proto(chat, CUBE_CALLER), &proto(chat, ONLY_SQUARES)).unwrap_err();
        assert_eq!(client, "the peer serves no `rpc Cube`");
        assert_eq!(
            srv,
            "the peer calls `rpc Cube`, which this node does not serve"
        );
        // two callers and no server
        let (x, _) = both(&proto(chat, CUBE_CALLER), &proto(chat, CUBE_CALLER)).unwrap_err();
        assert_eq!(x, "neither this node nor the peer serves `rpc Cube`");
        // rpcs on one side only: the frames differ
        let (x, _) = both(&proto(chat, &[]), &server).unwrap_err();
        assert!(x.contains("the peer declares rpcs"), "{x}");
    }

    #[test]
    fn names_and_framings_must_match() {
        let a = proto(schema_of::<v1::Chat>, &[]);
        let mut b = a.clone();
        b.framing = 9;
        let (x, _) = both(&a, &b).unwrap_err();
        assert_eq!(
            x,
            "the peer frames its messages as length_delimited(length_width = 4, little_endian), this node as length_delimited(length_width = 4, big_endian)"
        );
        let mut b = a.clone();
        b.name = "other".into();
        let (x, _) = both(&a, &b).unwrap_err();
        assert_eq!(
            x,
            "the peer's protocol is named `other`, this node's is named `chat`"
        );
        b.name = String::new();
        let (_, y) = both(&a, &b).unwrap_err();
        assert_eq!(
            y,
            "the peer's protocol is named `chat`, this node's has no `name`"
        );
    }

    #[test]
    fn opaque_types_match_within_their_families() {
        use std::collections::{BTreeMap, BTreeSet, HashMap};
        let ok = |a: SchemaFn, b: SchemaFn| both(&proto(a, &[]), &proto(b, &[]));
        ok(schema_of::<String>, schema_of::<Vec<u8>>).unwrap();
        ok(schema_of::<Bytes>, schema_of::<String>).unwrap();
        ok(schema_of::<Vec<u32>>, schema_of::<BTreeSet<u64>>).unwrap();
        ok(
            schema_of::<HashMap<u16, String>>,
            schema_of::<BTreeMap<u64, Bytes>>,
        )
        .unwrap();
        ok(schema_of::<Box<u32>>, schema_of::<u64>).unwrap();
        let (x, _) = ok(schema_of::<u8>, schema_of::<u16>).unwrap_err();
        assert_eq!(x, "the peer has `u16` where this node has `u8`");
        let (x, _) = ok(schema_of::<Vec<u16>>, schema_of::<Vec<i16>>).unwrap_err();
        assert_eq!(x, "the peer has `i16` where this node has `u16`");
        ok(schema_of::<Option<u8>>, schema_of::<u8>).unwrap_err();
    }

    #[test]
    fn versions_are_accepted_both_ways() {
        let v = |version, accepts| Versions { version, accepts };
        assert!(versions_agree("chat", v(1, (1, 2)), v(2, (1, u32::MAX))).is_ok());
        assert_eq!(
            versions_agree("chat", v(1, (1, 2)), v(3, (1, u32::MAX))).unwrap_err(),
            "the peer speaks version 3 of `chat`; this node accepts 1..=2"
        );
        assert_eq!(
            versions_agree("chat", v(3, (1, u32::MAX)), v(1, (1, 2))).unwrap_err(),
            "this node speaks version 3 of `chat`, and the peer accepts 1..=2"
        );
        assert_eq!(
            versions_agree("chat", v(1, (2, u32::MAX)), v(1, (1, 1))).unwrap_err(),
            "the peer speaks version 1 of `chat`; this node accepts 2.."
        );
    }

    #[test]
    fn a_deep_chain_is_compared_without_recursion() {
        // ours: a recursive struct; the peer's: 2000 distinct links of the same shape (as a
        // hostile peer may send), then back to the first. No stack grows with the depth.
        #[derive(crate::Message)]
        #[message(crate = "crate")]
        struct Link(Option<Box<Link>>);
        let ours = proto(schema_of::<Link>, &[]);
        let mut theirs = ours.clone();
        let link = theirs.types[0].clone();
        let NodeKind::Struct { fields, .. } = &link.kind else {
            panic!("{:?}", link.kind)
        };
        let option = theirs.types[fields[0].ty as usize].clone();
        let base = theirs.types.len() as u32;
        for i in 0..2000u32 {
            // link i is (Option<link i + 1>), as two nodes
            let mut next = link.clone();
            if let NodeKind::Struct { fields, .. } = &mut next.kind {
                fields[0].ty = base + 2 * i + 1;
            }
            let mut opt = option.clone();
            opt.params = vec![base + 2 * i + 2];
            theirs.types.push(next);
            theirs.types.push(opt);
        }
        theirs.types.push(link.clone());
        theirs.inbound = Some(base);
        theirs.outbound = Some(base);
        theirs.validate().unwrap();
        both(&ours, &theirs).unwrap();

        // the same chain ending in a `u8`
        let end = theirs.types.len() - 1;
        theirs.types[end] = TypeNode {
            name: "u8".into(),
            kind: NodeKind::Opaque,
            params: Vec::new(),
        };
        let (x, y) = both(&ours, &theirs).unwrap_err();
        assert_eq!(x, "the peer's `Link.0` is `u8`, this node's is `Link`");
        assert_eq!(y, "the peer's `Link.0` is `Link`, this node's is `u8`");
    }

    mod random {
        //! Random descriptions (small graphs of every kind, flags and links at random): the
        //! two sides' verdicts always agree, and nothing panics.

        use proptest::prelude::*;

        use super::super::*;
        use crate::dsl::describe::{Field, NodeKind, RpcLine, TypeNode, Variant};

        const NAMES: &[&str] = &["A", "B", "u8", "u32", "u64", "String", "Vec", "Option"];

        fn field(n: u32) -> impl Strategy<Value = Field> {
            (0..n, any::<bool>(), 0..3usize).prop_map(|(ty, default, name)| Field {
                name: ["a", "b", "c"][name].into(),
                ty,
                default,
            })
        }

        fn fields(n: u32) -> impl Strategy<Value = Vec<Field>> {
            prop::collection::vec(field(n), 0..3)
        }

        fn kind(n: u32) -> impl Strategy<Value = NodeKind> {
            let variant = (0..4u32, fields(n)).prop_map(|(tag, fields)| Variant {
                name: format!("V{tag}"),
                tag,
                fields,
            });
            prop_oneof![
                Just(NodeKind::Opaque),
                (fields(n), any::<bool>())
                    .prop_map(|(fields, extensible)| NodeKind::Struct { fields, extensible }),
                (
                    prop::collection::vec(variant, 0..3),
                    any::<bool>(),
                    any::<bool>()
                )
                    .prop_map(|(variants, catch_all, extensible)| NodeKind::Enum {
                        variants,
                        catch_all,
                        extensible,
                    }),
            ]
        }

        fn description() -> impl Strategy<Value = Description> {
            (1..7u32).prop_flat_map(|n| {
                let node = (0..NAMES.len(), kind(n), prop::collection::vec(0..n, 0..2)).prop_map(
                    |(name, kind, params)| TypeNode {
                        name: NAMES[name].into(),
                        kind,
                        params,
                    },
                );
                let rpc = (0..2usize, 0..n, 0..n, any::<bool>()).prop_map(
                    |(name, request, response, served)| RpcLine {
                        name: ["X", "Y"][name].into(),
                        request,
                        response,
                        served,
                    },
                );
                (
                    prop::collection::vec(node, n as usize),
                    prop::option::of(0..n),
                    prop::option::of(0..n),
                    prop::collection::vec(rpc, 0..3),
                )
                    .prop_map(|(types, inbound, outbound, mut rpcs)| {
                        // a declaration has one line per request (checked on receipt)
                        let mut seen = Vec::new();
                        rpcs.retain(|r| {
                            let new = !seen.contains(&r.name);
                            seen.push(r.name.clone());
                            new
                        });
                        Description {
                            name: "chat".into(),
                            framing: 8,
                            inbound,
                            outbound,
                            rpcs,
                            types,
                        }
                    })
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            #[test]
            fn both_sides_reach_the_same_verdict(a in description(), b in description()) {
                prop_assert!(a.validate().is_ok() && b.validate().is_ok());
                let (x, y) = (compatible(&a, &b), compatible(&b, &a));
                prop_assert_eq!(x.is_ok(), y.is_ok(), "{:?} / {:?}", x, y);
            }
        }
    }
}
