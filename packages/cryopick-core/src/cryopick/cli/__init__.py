"""The ``cryopick`` command: one module per subcommand."""
