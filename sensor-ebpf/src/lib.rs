//! Build-dependency anchor: `sensor-user/build.rs` depends on this crate so that cargo rebuilds
//! the eBPF object when its sources change. The programs live in `main.rs`.
#![no_std]
