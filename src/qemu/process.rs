//! QEMU as a child in its own process group: pipes, SIGTERM then SIGKILL to the group, reaping.
