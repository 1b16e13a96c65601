//! Unit tests of the report's figures.
