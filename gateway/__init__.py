"""The FastAPI app (`create_app`), webhooks, the coordinator REST API, auth and the CLI."""
