"""Who is calling the API: Keystone logins, bearer tokens, API keys, roles and rate limits."""
