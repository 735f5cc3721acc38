//! Streaming removal of ANSI/terminal escape sequences and carriage returns.
//!
//! STUB: owned by the console helper.
