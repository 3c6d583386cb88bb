//! Precinct's userspace agent: loads the kernel programs, turns their flow counters into EVE
//! records and Prometheus metrics, and explains the host's readiness (`doctor`).

pub mod agent;
pub mod applayer;
pub mod capture;
pub mod community_id;
pub mod config;
pub mod datapath;
pub mod detect;
pub mod doctor;
pub mod eve;
pub mod flows;
pub mod health;
pub mod identity;
pub mod inspect;
pub mod live;
pub mod metrics;
pub mod protect;
pub mod replay;
pub mod rules;
pub mod rules_check;
pub mod sinks;
pub mod status;
pub mod sweep;
pub mod sync;
pub mod timefmt;
