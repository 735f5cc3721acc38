//! The human reporter: live console, stage lines and the final verdict line.
