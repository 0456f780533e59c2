"""The console's adapters: the web application (routes, middleware, templates), sign-in at
the identity provider, and the typed gRPC clients of the four services."""
