//! Data
