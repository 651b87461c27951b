"""The ``totowalk`` subcommands, one module each, every one with ``register(subparsers)``."""
