//! The sliding replay window of received counters.
