"""Errors that are the user's to fix: the CLI prints them plainly and exits non-zero."""


class UserError(Exception):
    """A mistake in the user's input or environment, with what to do about it."""


class DataError(UserError):
    """A dataset is missing, unreadable or malformed."""


class ConfigError(UserError):
    """A configuration file or option is invalid."""
