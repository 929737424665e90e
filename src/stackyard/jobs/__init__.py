"""Durable jobs: rows in the database, claimed with a lease, run by an in-process runner."""
