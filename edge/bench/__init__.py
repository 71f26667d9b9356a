"""Benchmarks: `tinysense bench` (per-variant accuracy, latency, memory), the benchmark suite
(backends, threads, operators, MACs) and the streaming benchmark (false accepts per hour, DET
curves, CPU against a peer). Imports edge.hearing, edge.seeing and edge.core."""
