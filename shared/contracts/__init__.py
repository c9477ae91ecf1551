"""Public event payload models, one module per producing service."""
