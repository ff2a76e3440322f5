"""Lightning training of the project's models (imports Lightning lazily)."""
