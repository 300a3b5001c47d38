//! No input makes the plan loader panic (property tests).
