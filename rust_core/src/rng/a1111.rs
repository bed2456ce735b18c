//! AUTOMATIC1111's seed features (filled in below).
