//! In-kernel protection as userspace drives it: list files, the address tables built from them
//! and swapped into the kernel atomically, the policy, live control and drop events.

pub mod lists;
