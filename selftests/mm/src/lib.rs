//! vm_util equivalents and uapi bindings.
