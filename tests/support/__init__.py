"""Servers and helpers the test suite starts for real."""
