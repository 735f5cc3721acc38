//! Per-case work directories: patched VM configs, rootfs copies and injected kernels.
