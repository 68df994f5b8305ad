//! Expansion-level checks that no compile test can make.

use proc_macro2::{TokenStream, TokenTree};
use quote::quote;

fn idents(stream: TokenStream, out: &mut Vec<String>) {
    for tt in stream {
        match tt {
            TokenTree::Ident(i) => out.push(i.to_string()),
            TokenTree::Group(g) => idents(g.stream(), out),
            _ => {}
        }
    }
}

/// With `crate = ::p2p`, the expansion of every feature names the runtime only through
/// `::p2p::__private`: a renamed dependency works.
#[test]
fn a_crate_override_replaces_every_runtime_path() {
    let input = quote! {
        Peer speaks Chat over length_delimited(max_frame = 1 KiB) {
            crate = ::p2p,
            handshake = fingerprint,
            handshake_timeout = 1 s,
            version = 3,
            accepts = 2..,
            on Chat::A from addr => {},
            on _ => {},
            rpc Ping(n) from addr -> Pong => Pong(n),
            rpc Query -> Answer,
            on_connect(addr) => {},
            on_disconnect(addr) => {},
        }
    };
    let output = super::protocol(input);
    let mut names = Vec::new();
    idents(output.clone(), &mut names);
    assert!(!names.iter().any(|n| n == "pea2pea"), "{output}");
    assert!(names.iter().any(|n| n == "p2p"));
    assert!(!output.to_string().contains("compile_error"), "{output}");
}

/// DSL.md's settings table documents exactly the keys `protocol!` accepts.
#[test]
fn dsl_md_lists_every_setting() {
    let doc = include_str!("../../DSL.md");
    let table = doc
        .split("### Settings")
        .nth(1)
        .and_then(|rest| {
            rest.split("\n\n")
                .find(|block| block.starts_with("| key |"))
        })
        .expect("DSL.md has a settings table under `### Settings`");
    let documented: Vec<&str> = table
        .lines()
        .skip(2)
        .filter_map(|row| row.strip_prefix("| `")?.split('`').next())
        .collect();
    let accepted: Vec<&str> = super::settings::SETTINGS.iter().map(|s| s.key).collect();
    assert_eq!(
        documented, accepted,
        "DSL.md's settings table and settings.rs differ"
    );
}
