"""Engager adapters: the Kafka handler, the gRPC API and the inbox's state rebuild."""
