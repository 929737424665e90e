"""The devcloud: a real OpenStack (from PyPI) started on loopback for development and tests."""
