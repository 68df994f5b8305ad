//! trybuild cases live under ui-tests/tests.
