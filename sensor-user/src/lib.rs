//! Precinct's userspace agent: loads the kernel programs, turns their flow counters into EVE
//! records and Prometheus metrics, and explains the host's readiness (`doctor`).

pub mod agent;
pub mod applayer;
pub mod capture;
pub mod community_id;
pub mod config;
pub mod detect;
pub mod datapath;
pub mod doctor;
pub mod eve;
pub mod flows;
pub mod inspect;
pub mod metrics;
pub mod replay;
pub mod rules_check;
