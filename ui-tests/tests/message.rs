//! Compile-fail and compile-pass cases for `#[derive(Message)]`.

#[test]
fn message_derive() {
    let t = trybuild::TestCases::new();
    t.pass("tests/message/pass_*.rs");
    t.compile_fail("tests/message/fail_*.rs");
}
