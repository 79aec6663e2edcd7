"""Subcommands of the ``flowbridge`` command line."""
