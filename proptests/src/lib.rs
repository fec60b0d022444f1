//! Property tests of the codec and state machines live in `tests/`.
