"""Legation's Evaluate step: every event indexed, each campaign measured against its
objectives."""
