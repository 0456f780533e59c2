"""View models: one module per section, pure functions from the services' responses (and the
person) to what a template shows. No I/O, so every page's content is unit-tested without a
browser or a service."""
