//! Persistence: the journal (every accepted command, written before its
//! answer is sent), the state file (snapshots in the original service's
//! layout) and recovery from the two at start.

pub mod cancel_after;
pub mod export;
pub mod journal;
pub mod recorded_settings;
pub mod recovery;
pub mod segments;
pub mod snapshot;
