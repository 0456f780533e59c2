"""Kafka handlers, state tables, channels, the dispatcher."""
