//! Tests of the shell reader.
