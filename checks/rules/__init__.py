"""One module per check. See checks.registry for the conventions."""
