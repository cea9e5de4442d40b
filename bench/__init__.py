"""Benchmarks (`make bench`): they start the real app and measure it over loopback; never run as tests."""
