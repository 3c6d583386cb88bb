//! The signature engine: Suricata's rule language ([`parse`], [`addr`], [`sig`]), payload
//! matching ([`matcher`]), the rule set ([`ruleset`]) and its multi-pattern prefilter
//! ([`prefilter`]), evaluation
//! ([`eval`]) with the per-flow state it keeps ([`state`]), and detection on the flows of the
//! inspection pipeline with the alert records of what matched ([`flow`]).

pub mod addr;
pub mod classification;
pub mod eval;
pub mod flow;
mod home;
pub mod hyperscan;
pub mod matcher;
pub mod parse;
mod pcre;
pub mod prefilter;
pub mod ruleset;
pub mod sig;
pub mod state;

pub use crate::applayer::Buffer;
pub use eval::{DetectStats, Detector, Hit, PacketInfo};
pub use matcher::DEFAULT_INSPECTION_LIMIT;
pub use prefilter::Matcher;
pub use ruleset::{LoadReport, RuleSet, Skipped};
pub use state::FlowState;
