"""aac-sparse: truly sparse training of MLPs and automated configuration of its algorithms."""

__version__ = "0.1.0"
