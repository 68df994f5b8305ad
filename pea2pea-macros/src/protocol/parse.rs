//! The syntax of `protocol!`, read into a tree without judging it (that is check.rs's job).
//! A malformed item is recorded and skipped, so one typo does not hide every other error.

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::{
    Expr, Ident, LitBool, LitInt, LitStr, Pat, Path, Token, Type,
    ext::IdentExt,
    parse::{ParseStream, Parser},
    token,
};

use crate::errors::Errors;

/// The words of `protocol!` that are not Rust keywords.
mod kw {
    syn::custom_keyword!(speaks);
    syn::custom_keyword!(reads);
    syn::custom_keyword!(writes);
    syn::custom_keyword!(over);
    syn::custom_keyword!(length_delimited);
    syn::custom_keyword!(custom);
    syn::custom_keyword!(on);
    syn::custom_keyword!(rpc);
    syn::custom_keyword!(from);
    syn::custom_keyword!(on_connect);
    syn::custom_keyword!(on_disconnect);
}

/// `Node speaks Msg over framing { items }`.
pub struct Declaration {
    pub node: Path,
    pub messages: Messages,
    pub framing: Option<Framing>,
    pub items: Vec<Item>,
    /// Some handler did not parse: the generated `match` gets a catch-all so that the
    /// missing arm is not reported as a second error.
    pub broken_items: bool,
}

// the syntax tree of one macro call: the size of its variants does not matter
#[allow(clippy::large_enum_variant)]
pub enum Messages {
    Speaks(Type),
    Split {
        reads: Option<Type>,
        writes: Option<Type>,
    },
}

pub enum Framing {
    LengthDelimited { options: Vec<Setting> },
    Custom { codec: Type },
}

/// `key = value`, or a bare flag such as `little_endian`.
pub struct Setting {
    pub key: Ident,
    pub value: Option<Value>,
}

pub enum Value {
    /// An integer with an optional unit, written apart (`64 KiB`) or as a suffix (`5s`).
    Int {
        lit: LitInt,
        unit: Option<(String, Span)>,
    },
    Bool(LitBool),
    Str(LitStr),
    Path(Path),
    /// `A..=B` or `A..`; `tokens` is all of it, for errors that underline the whole range.
    Range {
        start: LitInt,
        end: Option<LitInt>,
        tokens: TokenStream,
    },
}

impl Value {
    pub fn span(&self) -> Span {
        match self {
            Value::Int { lit, unit } => unit
                .as_ref()
                .and_then(|(_, s)| lit.span().join(*s))
                .unwrap_or_else(|| lit.span()),
            Value::Bool(b) => b.span,
            Value::Str(s) => s.span(),
            Value::Path(p) => syn::spanned::Spanned::span(p),
            Value::Range { start, .. } => start.span(),
        }
    }
}

#[allow(clippy::large_enum_variant)]
pub enum Item {
    Setting(Setting),
    On(OnArm),
    Rpc(RpcItem),
    Hook(Hook),
}

/// `on Pattern from addr => body`.
pub struct OnArm {
    pub pat: Pat,
    pub from: Option<Pat>,
    /// `-> Type`: what the body evaluates to (`io::Result<()>`, ...), when it is said.
    pub result: Option<Type>,
    pub body: Expr,
}

/// `rpc Request -> Response` or `rpc Pattern [: Type] from addr -> Response => body`.
pub struct RpcItem {
    pub keyword: Ident,
    pub request: Type,
    pub response: Type,
    pub handler: Option<RpcHandler>,
}

pub struct RpcHandler {
    pub pat: Pat,
    pub from: Option<Pat>,
    pub body: Expr,
}

/// `on_connect(addr) => body` or `on_disconnect(addr[, origin]) => body`.
pub struct Hook {
    pub name: Ident,
    pub args: Vec<Pat>,
    pub arrow: Token![=>],
    pub body: Expr,
}

const EXPECTED_ITEM: &str = "expected a handler (`on Msg::Variant(..) from addr => ...`), an rpc (`rpc Request -> Response`), a hook (`on_connect(addr) => ...` or `on_disconnect(addr) => ...`) or a setting (`key = value`)";

/// Parses the whole input; `None` when the header is too broken to expand anything.
pub fn parse(input: TokenStream, errors: &mut Errors) -> Option<Declaration> {
    let parser = |stream: ParseStream| Ok(parse_declaration(stream, errors));
    match parser.parse2(input) {
        Ok(decl) => decl,
        Err(e) => {
            errors.push(e);
            None
        }
    }
}

fn parse_declaration(input: ParseStream, errors: &mut Errors) -> Option<Declaration> {
    match header(input) {
        Ok((node, messages, framing)) => {
            if !input.peek(token::Brace) {
                errors.push(input.error(
                    "expected `{` and the protocol's handlers, as in `Peer speaks Chat { on Chat::Hello { name } from addr => ... }`",
                ));
                skip_rest(input);
                return None;
            }
            let content = match braced_body(input) {
                Ok(body) => body,
                Err(e) => {
                    errors.push(e);
                    return None;
                }
            };
            let (items, broken_items) = parse_items(&content, errors);
            if !input.is_empty() {
                errors.push(input.error(
                    "unexpected tokens after the protocol's `{ ... }`: one protocol! declares one node",
                ));
                skip_rest(input);
            }
            Some(Declaration {
                node,
                messages,
                framing,
                items,
                broken_items,
            })
        }
        Err(e) => {
            errors.push(e);
            skip_rest(input);
            None
        }
    }
}

fn braced_body<'a>(input: ParseStream<'a>) -> syn::Result<syn::parse::ParseBuffer<'a>> {
    let content;
    syn::braced!(content in input);
    Ok(content)
}

fn skip_rest(input: ParseStream) {
    let _ = input.step(|cursor| {
        let mut rest = *cursor;
        while let Some((_, next)) = rest.token_tree() {
            rest = next;
        }
        Ok(((), rest))
    });
}

fn header(input: ParseStream) -> syn::Result<(Path, Messages, Option<Framing>)> {
    if input.is_empty() {
        return Err(input.error(
            "expected a declaration such as `Peer speaks Chat { on Chat::Hello { name } from addr => ... }`",
        ));
    }
    let node = Path::parse_mod_style(input).map_err(|e| {
        syn::Error::new(
            e.span(),
            "expected the node type that speaks the protocol, as in `Peer speaks Chat { ... }`",
        )
    })?;
    if input.peek(Token![<]) {
        return Err(input.error(
            "generic node types are not supported by protocol!; declare the protocol for a concrete type",
        ));
    }
    let messages = if input.peek(kw::speaks) {
        input.parse::<kw::speaks>()?;
        Messages::Speaks(input.parse()?)
    } else if input.peek(kw::reads) || input.peek(kw::writes) {
        split_messages(input)?
    } else {
        let verb = input.call(Ident::parse_any).map_err(|e| {
            syn::Error::new(
                e.span(),
                "expected `speaks`, `reads` or `writes` after the node type, as in `Peer speaks Chat`",
            )
        })?;
        return Err(syn::Error::new(
            verb.span(),
            format!(
                "unknown verb `{verb}`: expected `speaks` (one message type both ways), `reads` or `writes`, as in `Peer speaks Chat` or `Peer reads Request, writes Response`"
            ),
        ));
    };
    let framing = if input.peek(kw::over) {
        input.parse::<kw::over>()?;
        Some(framing(input)?)
    } else {
        None
    };
    Ok((node, messages, framing))
}

/// `reads In[, writes Out]` or `writes Out[, reads In]`.
fn split_messages(input: ParseStream) -> syn::Result<Messages> {
    let reads_first = input.peek(kw::reads);
    input.call(Ident::parse_any)?;
    let first: Type = input.parse()?;
    let mut second = None;
    if input.peek(Token![,]) {
        input.parse::<Token![,]>()?;
        let (expected, found) = match reads_first {
            true => ("writes", input.peek(kw::writes)),
            false => ("reads", input.peek(kw::reads)),
        };
        let other = input.call(Ident::parse_any)?;
        if !found {
            return Err(syn::Error::new(
                other.span(),
                format!("expected `{expected}` here, as in `Peer reads Request, writes Response`"),
            ));
        }
        second = Some(input.parse::<Type>()?);
    }
    let (reads, writes) = match reads_first {
        true => (Some(first), second),
        false => (second, Some(first)),
    };
    Ok(Messages::Split { reads, writes })
}

fn framing(input: ParseStream) -> syn::Result<Framing> {
    if input.peek(kw::length_delimited) {
        input.parse::<kw::length_delimited>()?;
        let mut options = Vec::new();
        if input.peek(token::Paren) {
            let content;
            syn::parenthesized!(content in input);
            while !content.is_empty() {
                options.push(setting(&content)?);
                if content.is_empty() {
                    break;
                }
                content.parse::<Token![,]>()?;
            }
        }
        Ok(Framing::LengthDelimited { options })
    } else if input.peek(kw::custom) {
        input.parse::<kw::custom>()?;
        let content;
        syn::parenthesized!(content in input);
        let codec = content.parse()?;
        if !content.is_empty() {
            return Err(content.error(
                "expected only the codec type, as in `over custom(MyCodec)`; it is built with `Default::default()`",
            ));
        }
        Ok(Framing::Custom { codec })
    } else {
        let name: Ident = input.call(Ident::parse_any)?;
        Err(syn::Error::new(
            name.span(),
            format!(
                "unknown framing `{name}`: expected `length_delimited(max_frame = 64 KiB)` or `custom(CodecType)`"
            ),
        ))
    }
}

fn setting(input: ParseStream) -> syn::Result<Setting> {
    let key = if input.peek(Token![crate]) {
        let token: Token![crate] = input.parse()?;
        Ident::new("crate", token.span)
    } else {
        input.call(Ident::parse_any)?
    };
    if !input.peek(Token![=]) {
        return Ok(Setting { key, value: None });
    }
    input.parse::<Token![=]>()?;
    Ok(Setting {
        key,
        value: Some(value(input)?),
    })
}

/// `A..=B` or `A..` (a range of versions).
fn range(input: ParseStream) -> syn::Result<Value> {
    let start: LitInt = input.parse()?;
    let mut tokens = start.to_token_stream();
    let end = if input.peek(Token![..=]) {
        input.parse::<Token![..=]>()?.to_tokens(&mut tokens);
        let end = input.parse::<LitInt>()?;
        end.to_tokens(&mut tokens);
        Some(end)
    } else {
        input.parse::<Token![..]>()?.to_tokens(&mut tokens);
        if input.peek(LitInt) {
            return Err(input.error(
                "write an inclusive range, `A..=B`, or an open one, `A..`: a range that excludes its end reads too easily as including it",
            ));
        }
        None
    };
    Ok(Value::Range { start, end, tokens })
}

fn value(input: ParseStream) -> syn::Result<Value> {
    if input.peek(LitInt) && (input.peek2(Token![..=]) || input.peek2(Token![..])) {
        range(input)
    } else if input.peek(LitInt) {
        let lit: LitInt = input.parse()?;
        let mut unit = (!lit.suffix().is_empty()).then(|| (lit.suffix().to_owned(), lit.span()));
        if unit.is_none() && input.peek(Ident) && !input.peek2(Token![=]) {
            // a word right after a number is its unit (a wrong one is reported by check.rs),
            // unless it starts the next item after a forgotten comma
            if !starts_item(input) {
                let next = input.call(Ident::parse_any)?;
                unit = Some((next.to_string(), next.span()));
            }
        }
        Ok(Value::Int { lit, unit })
    } else if input.peek(LitBool) {
        Ok(Value::Bool(input.parse()?))
    } else if input.peek(LitStr) {
        Ok(Value::Str(input.parse()?))
    } else if input.peek(Ident::peek_any) || input.peek(Token![::]) {
        Ok(Value::Path(Path::parse_mod_style(input)?))
    } else {
        Err(input.error(
            "expected a value: a number (`128`), a size (`64 KiB`), a duration (`5 s`, `250 ms`), `true`/`false`, a string or a path",
        ))
    }
}

/// Parses items up to the end, recovering at the next top-level comma after an error.
fn parse_items(input: ParseStream, errors: &mut Errors) -> (Vec<Item>, bool) {
    let mut items = Vec::new();
    let mut broken = false;
    while !input.is_empty() {
        match item(input) {
            Ok((item, needs_comma)) => {
                items.push(item);
                if input.is_empty() {
                    break;
                }
                if input.peek(Token![,]) {
                    let _ = input.parse::<Token![,]>();
                } else if needs_comma {
                    errors.push(input.error(
                        "expected `,` after this item (a handler whose body is a `{ block }` needs none)",
                    ));
                    broken = true;
                    skip_to_comma(input);
                }
            }
            Err(e) => {
                errors.push(e);
                broken = true;
                skip_to_comma(input);
            }
        }
    }
    (items, broken)
}

fn skip_to_comma(input: ParseStream) {
    let _ = input.step(|cursor| {
        let mut rest = *cursor;
        while let Some((tt, next)) = rest.token_tree() {
            rest = next;
            if matches!(&tt, proc_macro2::TokenTree::Punct(p) if p.as_char() == ',') {
                break;
            }
        }
        Ok(((), rest))
    });
}

/// Whether the next word starts an item (`on`, `rpc`, `on_connect`, `on_disconnect`).
fn starts_item(input: ParseStream) -> bool {
    input.peek(kw::on)
        || input.peek(kw::rpc)
        || input.peek(kw::on_connect)
        || input.peek(kw::on_disconnect)
}

/// One item, and whether a comma must follow it.
fn item(input: ParseStream) -> syn::Result<(Item, bool)> {
    let is_setting =
        (input.peek(Ident::peek_any) && input.peek2(Token![=]) && !input.peek2(Token![=>]))
            || input.peek(Token![crate]);
    if is_setting {
        return Ok((Item::Setting(setting(input)?), true));
    }
    if !input.peek(Ident::peek_any) {
        return Err(input.error(EXPECTED_ITEM));
    }
    if input.peek(kw::on) {
        input.parse::<kw::on>()?;
        on_item(input)
    } else if input.peek(kw::rpc) {
        let keyword: kw::rpc = input.parse()?;
        rpc(input, Ident::new("rpc", keyword.span))
    } else if input.peek(kw::on_connect) || input.peek(kw::on_disconnect) {
        hook_item(input)
    } else {
        let head = input.call(Ident::parse_any)?;
        Err(syn::Error::new(
            head.span(),
            format!("unexpected `{head}`: {EXPECTED_ITEM}"),
        ))
    }
}

/// `on Pattern [from Pattern] [-> Type] => body`, after `on`.
fn on_item(input: ParseStream) -> syn::Result<(Item, bool)> {
    let pat = Pat::parse_multi_with_leading_vert(input)?;
    let from = from_clause(input)?;
    let result = if input.peek(Token![->]) {
        input.parse::<Token![->]>()?;
        Some(input.parse()?)
    } else {
        None
    };
    arrow(input, "the handler")?;
    let body: Expr = input.parse()?;
    let needs_comma = !is_block_like(&body);
    let arm = OnArm {
        pat,
        from,
        result,
        body,
    };
    Ok((Item::On(arm), needs_comma))
}

/// `on_connect(addr) => body` or `on_disconnect(addr[, origin]) => body`.
fn hook_item(input: ParseStream) -> syn::Result<(Item, bool)> {
    let name = input.call(Ident::parse_any)?;
    let content;
    if !input.peek(token::Paren) {
        return Err(input.error(format!(
            "expected `(addr)` after `{name}`, as in `{name}(addr) => ...`"
        )));
    }
    syn::parenthesized!(content in input);
    let args = content.parse_terminated(Pat::parse_single, Token![,])?;
    let arrow = arrow(input, "the hook")?;
    let body: Expr = input.parse()?;
    let needs_comma = !is_block_like(&body);
    let hook = Hook {
        name,
        args: args.into_iter().collect(),
        arrow,
        body,
    };
    Ok((Item::Hook(hook), needs_comma))
}

fn from_clause(input: ParseStream) -> syn::Result<Option<Pat>> {
    if input.peek(kw::from) {
        input.parse::<kw::from>()?;
        Ok(Some(Pat::parse_single(input)?))
    } else {
        Ok(None)
    }
}

fn arrow(input: ParseStream, what: &str) -> syn::Result<Token![=>]> {
    if input.peek(Token![=>]) {
        input.parse()
    } else {
        Err(input.error(format!(
            "expected `=>` and {what}'s body (or `from addr =>` to name the peer's address)"
        )))
    }
}

fn rpc(input: ParseStream, keyword: Ident) -> syn::Result<(Item, bool)> {
    // `rpc Request -> Response` with no handler: the node calls it but does not serve it.
    let fork = input.fork();
    let call_only = fork.parse::<Type>().is_ok()
        && fork.parse::<Token![->]>().is_ok()
        && fork.parse::<Type>().is_ok()
        && !fork.peek(Token![=>])
        && !fork.peek(Ident);
    if call_only {
        let request = input.parse()?;
        input.parse::<Token![->]>()?;
        let response = input.parse()?;
        return Ok((
            Item::Rpc(RpcItem {
                keyword,
                request,
                response,
                handler: None,
            }),
            true,
        ));
    }
    let pat = Pat::parse_single(input)?;
    let explicit: Option<Type> = if input.peek(Token![:]) {
        input.parse::<Token![:]>()?;
        Some(input.parse()?)
    } else {
        None
    };
    let from = from_clause(input)?;
    if !input.peek(Token![->]) {
        return Err(input.error(
            "expected `-> Response` after the request, as in `rpc Ping(n) from addr -> Pong => Pong(n)`",
        ));
    }
    input.parse::<Token![->]>()?;
    let response: Type = input.parse()?;
    arrow(input, "the rpc handler")?;
    let body: Expr = input.parse()?;
    let needs_comma = !is_block_like(&body);
    let request = match explicit {
        Some(ty) => ty,
        None => request_type(&pat)?,
    };
    Ok((
        Item::Rpc(RpcItem {
            keyword,
            request,
            response,
            handler: Some(RpcHandler { pat, from, body }),
        }),
        needs_comma,
    ))
}

/// The request type named by a struct pattern (`Ping(n)`, `Ping { n }`, `Ping`).
fn request_type(pat: &Pat) -> syn::Result<Type> {
    let path = match pat {
        Pat::TupleStruct(p) => p.path.clone(),
        Pat::Struct(p) => p.path.clone(),
        Pat::Path(p) => p.path.clone(),
        Pat::Ident(p) if p.subpat.is_none() && p.by_ref.is_none() && p.mutability.is_none() => {
            Path::from(p.ident.clone())
        }
        _ => {
            return Err(syn::Error::new_spanned(
                pat,
                "cannot tell the request type from this pattern; name it: `rpc request: Request from addr -> Response => ...`",
            ));
        }
    };
    Ok(Type::Path(syn::TypePath { qself: None, path }))
}

fn is_block_like(expr: &Expr) -> bool {
    matches!(
        expr,
        Expr::Block(_)
            | Expr::If(_)
            | Expr::Match(_)
            | Expr::Loop(_)
            | Expr::While(_)
            | Expr::ForLoop(_)
            | Expr::Unsafe(_)
            | Expr::Const(_)
            | Expr::TryBlock(_)
    )
}
