"""stackyard's devcloud plugins, installed into the OpenStack virtualenv (never imported by the app)."""
