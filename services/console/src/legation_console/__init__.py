"""Legation console: the web application for people, a backend-for-frontend over the four
services' gRPC APIs (see services/console/README.md)."""
