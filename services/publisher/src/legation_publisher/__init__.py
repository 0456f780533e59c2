"""Legation Publish step: create posts and publish them to our channels (first: our site's
Atom feed), then tell the platform with a Publication event."""
