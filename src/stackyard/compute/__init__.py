"""Compute domain: instance operations with name resolution and input validation over the gateway."""
