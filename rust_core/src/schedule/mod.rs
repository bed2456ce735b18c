//! Noise schedules (filled in by the schedules work).
