//! Persistence (in progress): the journal's record format so far. The
//! persister thread, snapshots and recovery are the rest of the
//! persistence issue.

pub mod journal;
