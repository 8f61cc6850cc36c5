"""The two errors users see: bad configuration and bad data. Both carry a message to print."""


class ConfigError(ValueError):
    """A configuration problem; the message lists every problem found, one per line."""


class DataError(ValueError):
    """A data problem; the message is one line naming the file, the row and the column."""
