//! Whether two peers' protocols can talk, from their [`Description`]s and versions: a pure
//! function, evaluated by both sides, which check the same conditions (each side's reads
//! against the other's writes, both ways) and so reach the same verdict. The reason names the
//! first difference from this node's point of view.
//!
//! The rules are DSL.md's "What is safe to change": fields are positional (names are not on the
//! wire); a writer's extra trailing fields need an `extensible` reader, a reader's extra fields
//! need `default`; a writer's variant needs the reader's variant of the same tag (with
//! compatible fields) or a catch-all; opaque types are equal by name and parameters, within
//! the families the format makes interchangeable (`u16`..`u64`, `String`/`Bytes`/`Vec<u8>`,
//! sequences, maps).

use std::collections::HashSet;

use super::describe::{Description, Field, NodeKind, RpcLine};

/// How deep a comparison goes before it gives up (a peer's description is untrusted: this
/// bounds the recursion, whatever its graph).
const MAX_DEPTH: usize = 64;

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
/// first difference.
pub(crate) fn compatible(ours: &Description, theirs: &Description) -> Result<(), String> {
    if ours.name != theirs.name {
        return Err(format!(
            "the peer's protocol is named `{}`, this node's `{}`",
            theirs.name, ours.name
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
        (false, true) => return Err("this node declares rpcs (its frames carry an rpc envelope) and the peer declares none".into()),
        (true, false) => return Err("the peer declares rpcs (its frames carry an rpc envelope) and this node declares none".into()),
        _ => {}
    }
    let mut cmp = Compare::new(ours, theirs);
    cmp.messages(ours.inbound, theirs.outbound, Dir::WeRead)?;
    cmp.messages(theirs.inbound, ours.outbound, Dir::TheyRead)?;
    for rpc in &ours.rpcs {
        match theirs.rpcs.iter().find(|r| r.name == rpc.name) {
            Some(peer) => cmp.rpc(rpc, peer)?,
            None if rpc.served => {} // the peer never calls it
            None => return Err(format!("the peer serves no `rpc {}`", rpc.name)),
        }
    }
    for rpc in &theirs.rpcs {
        let ours_has = ours.rpcs.iter().any(|r| r.name == rpc.name);
        if !ours_has && !rpc.served {
            return Err(format!(
                "the peer calls `rpc {}`, which this node does not serve",
                rpc.name
            ));
        }
    }
    Ok(())
}

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

struct Compare<'a> {
    ours: &'a Description,
    theirs: &'a Description,
    /// (reader, writer, who reads) triples met: assumed compatible while being compared,
    /// so a recursive type ends, and compared once.
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

    fn messages(&mut self, read: Option<u32>, written: Option<u32>, dir: Dir) -> Result<(), String> {
        let (reader, writer) = self.sides(dir);
        match (read, written) {
            (Some(r), Some(w)) => {
                self.value(At { desc: reader, ty: r }, At { desc: writer, ty: w }, dir, 0, None)
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
        let ctx = |part: &'static str| {
            let name = ours.name.clone();
            move |e: String| format!("in `rpc {name}`'s {part}: {e}")
        };
        let at = |desc, ty| At { desc, ty };
        let (o, t) = (self.ours, self.theirs);
        if ours.served {
            self.value(at(o, ours.request), at(t, theirs.request), Dir::WeRead, 0, None)
                .map_err(ctx("request"))?;
            self.value(at(t, theirs.response), at(o, ours.response), Dir::TheyRead, 0, None)
                .map_err(ctx("response"))?;
        }
        if theirs.served {
            self.value(at(t, theirs.request), at(o, ours.request), Dir::TheyRead, 0, None)
                .map_err(ctx("request"))?;
            self.value(at(o, ours.response), at(t, theirs.response), Dir::WeRead, 0, None)
                .map_err(ctx("response"))?;
        }
        Ok(())
    }

    /// Whether `reader` decodes every value `writer` encodes; `path` is where the value is
    /// (`Chat::Hello.agent`), when it is a field.
    fn value(
        &mut self,
        reader: At<'a>,
        writer: At<'a>,
        dir: Dir,
        depth: usize,
        path: Option<&str>,
    ) -> Result<(), String> {
        if !self.met.insert((reader.ty, writer.ty, dir == Dir::WeRead)) {
            return Ok(());
        }
        let (peer, this) = match dir {
            Dir::WeRead => (writer, reader),
            Dir::TheyRead => (reader, writer),
        };
        let peer_name = &peer.desc.types[peer.ty as usize].name;
        if depth > MAX_DEPTH {
            return Err(format!(
                "the peer's `{peer_name}` nests more than {MAX_DEPTH} types deep"
            ));
        }
        let (r, w) = (
            &reader.desc.types[reader.ty as usize],
            &writer.desc.types[writer.ty as usize],
        );
        let differ = || {
            Err(format!(
                "the peer's `{}` is `{}`, this node's is `{}`",
                path.unwrap_or(peer_name),
                peer.desc.render(peer.ty),
                this.desc.render(this.ty)
            ))
        };
        match (&r.kind, &w.kind) {
            (NodeKind::Opaque, NodeKind::Opaque) => {
                if family(reader) != family(writer) || r.params.len() != w.params.len() {
                    return differ();
                }
                // `Vec<u8>` is in the byte-string family: its parameter is settled
                if family(reader) == Family::Bytes {
                    return Ok(());
                }
                for (&rp, &wp) in r.params.iter().zip(&w.params) {
                    let (rp, wp) = (At { ty: rp, ..reader }, At { ty: wp, ..writer });
                    self.value(rp, wp, dir, depth + 1, path)?;
                }
                Ok(())
            }
            (
                NodeKind::Struct { fields: rf, extensible },
                NodeKind::Struct { fields: wf, .. },
            ) => {
                let path = peer_name.clone();
                let fields = Fields { reader: rf, writer: wf, extensible: *extensible };
                self.fields(reader, writer, fields, dir, &path, depth)
            }
            (
                NodeKind::Enum { variants: rv, catch_all, extensible },
                NodeKind::Enum { variants: wv, .. },
            ) => {
                for w_variant in wv {
                    let Some(r_variant) = rv.iter().find(|v| v.tag == w_variant.tag) else {
                        if *catch_all {
                            continue;
                        }
                        let (owner, lacker) = match dir {
                            Dir::WeRead => ("the peer's", "this node's"),
                            Dir::TheyRead => ("this node's", "the peer's"),
                        };
                        let this_name = &this.desc.types[this.ty as usize].name;
                        let (w_name, r_name) = match dir {
                            Dir::WeRead => (peer_name, this_name),
                            Dir::TheyRead => (this_name, peer_name),
                        };
                        return Err(format!(
                            "{owner} `{w_name}` has variant `{}` (tag {}), which {lacker} `{r_name}` lacks and has no catch-all for",
                            w_variant.name, w_variant.tag
                        ));
                    };
                    let peer_variant = match dir {
                        Dir::WeRead => &w_variant.name,
                        Dir::TheyRead => &r_variant.name,
                    };
                    let path = format!("{peer_name}::{peer_variant}");
                    let fields = Fields {
                        reader: &r_variant.fields,
                        writer: &w_variant.fields,
                        extensible: *extensible,
                    };
                    self.fields(reader, writer, fields, dir, &path, depth)?;
                }
                Ok(())
            }
            _ => differ(),
        }
    }

    /// Positional fields: the common ones compatible, the writer's extra ones skipped by an
    /// extensible reader, the reader's extra ones defaulted.
    fn fields(
        &mut self,
        reader: At<'a>,
        writer: At<'a>,
        f: Fields<'a>,
        dir: Dir,
        path: &str,
        depth: usize,
    ) -> Result<(), String> {
        for (rf, wf) in f.reader.iter().zip(f.writer) {
            let peer_field = if dir == Dir::WeRead { wf } else { rf };
            let at = format!("{path}.{}", peer_field.name);
            let (r, w) = (At { ty: rf.ty, ..reader }, At { ty: wf.ty, ..writer });
            self.value(r, w, dir, depth + 1, Some(&at))?;
        }
        let whose = |dir_is_peer: bool| if dir_is_peer { "the peer's" } else { "this node's" };
        if let Some(extra) = f.writer.get(f.reader.len()) {
            if !f.extensible {
                let writer_is_peer = dir == Dir::WeRead;
                return Err(format!(
                    "{} `{path}` has field `{}` after the last one {} knows, and {} type is not extensible",
                    whose(writer_is_peer),
                    extra.name,
                    if writer_is_peer { "this node" } else { "the peer" },
                    if writer_is_peer { "its" } else { "the peer's" },
                ));
            }
        }
        if let Some(extra) = f.reader.iter().skip(f.writer.len()).find(|r| !r.default) {
            let reader_is_peer = dir == Dir::TheyRead;
            return Err(format!(
                "{} `{path}` has field `{}`, which {} lacks and which is not `#[message(default)]`",
                whose(reader_is_peer),
                extra.name,
                if reader_is_peer { "this node's" } else { "the peer's" },
            ));
        }
        Ok(())
    }
}

/// The fields of a struct or of one variant, on both sides.
#[derive(Clone, Copy)]
struct Fields<'a> {
    reader: &'a [Field],
    writer: &'a [Field],
    extensible: bool,
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
