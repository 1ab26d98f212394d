"""Routing tables of registered resources, persisted in the metadata store."""
