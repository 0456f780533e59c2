"""Legation notifier: who must hear about what, once per episode, where they work."""
