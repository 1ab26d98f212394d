"""One FastAPI router per API; handlers stay thin and call a service (dependencies.py names them)."""
