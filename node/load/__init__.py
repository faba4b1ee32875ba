"""The load generator and workloads used by `godown bench` and `bench/`."""
