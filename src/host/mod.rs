//! Probing the runner: host architecture, QEMU binaries, KVM that really runs guests, VMX/SVM.
