//! Link-layer headers (to be written).
