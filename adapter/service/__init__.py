"""The long-running service (`burgas-adapter serve`): FastAPI app, health, status, metrics, @context, map."""
