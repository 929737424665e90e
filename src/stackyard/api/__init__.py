"""The REST API: FastAPI app factory, routers per noun, authentication, error mapping."""
