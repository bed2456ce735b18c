//! Seed policies (filled in below).
