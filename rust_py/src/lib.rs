//! Binding placeholder.
