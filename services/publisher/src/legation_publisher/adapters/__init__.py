"""The publisher's edges: channels it publishes to and the gRPC API."""
