"""Shared pytest fixtures: the stand-in servers (see legation_devstack.pytest_fixtures)."""

pytest_plugins = ["legation_devstack.pytest_fixtures"]
