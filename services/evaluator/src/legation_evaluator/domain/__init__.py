"""Evaluator domain logic: plain functions, no I/O."""
