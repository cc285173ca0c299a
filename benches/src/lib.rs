//! Shared packet sets and baselines for v6fw's benchmarks (to be written).
