"""Plain decisions without I/O: signals, episodes, recipients, timing, messages."""
