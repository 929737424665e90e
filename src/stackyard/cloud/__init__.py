"""Cloud access layer: the only package that talks to OpenStack through openstacksdk/keystoneauth1."""
