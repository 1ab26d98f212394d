"""Composed Serve applications: the entry points users run."""
