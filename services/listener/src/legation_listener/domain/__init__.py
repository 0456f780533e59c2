"""Listener domain logic: plain functions and classes, no I/O."""
