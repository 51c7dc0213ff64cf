"""The errors zoo reports to its users: each message is one line naming the bad value."""


class ConfigError(ValueError):
    """A config key or value is not acceptable; the message is one line for the user."""


class DataError(RuntimeError):
    """Data that can't be read or fetched; the message names the file and what was expected."""
