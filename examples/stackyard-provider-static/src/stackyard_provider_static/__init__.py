"""A stackyard provider plugin whose instances live in a JSON file: an example of a third-party provider."""

from stackyard_provider_static.provider import StaticProvider

__all__ = ["StaticProvider"]
