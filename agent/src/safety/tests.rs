//! Safety rule tests.
