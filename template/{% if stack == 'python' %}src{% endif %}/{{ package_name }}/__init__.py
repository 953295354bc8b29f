"""The service: a FastAPI app over PostgreSQL, run with `python -m` (see __main__)."""
