//! Dynamic load management: the pure allocator and the loop around it.
