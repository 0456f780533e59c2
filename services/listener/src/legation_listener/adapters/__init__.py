"""Listener adapters: feeds, Kafka state, the poller and the gRPC API."""
