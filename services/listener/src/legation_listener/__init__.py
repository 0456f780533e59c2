"""Legation's Listen step: items in watched feeds that discuss a tracked issue become
enriched Mention events."""
