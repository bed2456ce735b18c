//! Seeded Gaussian noise (filled in by the noise-engine work).
