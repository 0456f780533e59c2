"""Channel adapters shared by the publisher (posts) and the engager (replies)."""
