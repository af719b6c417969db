"""The ``aac-sparse`` command line."""
