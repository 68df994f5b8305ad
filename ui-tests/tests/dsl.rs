//! Compile-fail and compile-pass cases for `protocol!` and `#[node]`.

#[test]
fn dsl() {
    let t = trybuild::TestCases::new();
    t.pass("tests/dsl/pass_*.rs");
    t.compile_fail("tests/dsl/fail_*.rs");
}
