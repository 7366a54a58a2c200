"""The ``freight`` command line: one thin module per command group."""
