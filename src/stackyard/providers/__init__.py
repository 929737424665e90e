"""Providers: the clouds the API serves. OpenStack is built in; others are plugins (entry points)."""
