"""MLflow: run context, logging, model registry and aliases, pyfunc wrappers."""
