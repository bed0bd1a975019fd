"""Benchmarks and evaluation tools run from the Makefile (bench-classifier, bench-e2e, patient results).

Each prints its figures and ends with one JSON line. They may import serving and training code; nothing
imports them.
"""
