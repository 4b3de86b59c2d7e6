"""Helpers for tests and benchmarks; no torch. `s3_server`: a real S3-compatible server on loopback."""
