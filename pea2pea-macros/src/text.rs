//! Types and paths as a user wrote them, for messages and shapes.

/// Drops the spaces `to_string` puts around punctuation: `Vec < u8 >` becomes `Vec<u8>`.
pub fn compact(tokens: &str) -> String {
    let chars: Vec<char> = tokens.chars().collect();
    let word = |c: Option<&char>| c.is_some_and(|c| c.is_alphanumeric() || *c == '_');
    let mut out = String::with_capacity(tokens.len());
    for (i, &c) in chars.iter().enumerate() {
        if c == ' ' && !(word(chars.get(i.wrapping_sub(1))) && word(chars.get(i + 1))) {
            // `,` keeps one following space for readability.
            if chars.get(i.wrapping_sub(1)) == Some(&',') {
                out.push(' ');
            }
            continue;
        }
        out.push(c);
    }
    out
}
