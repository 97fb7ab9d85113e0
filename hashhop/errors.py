"""The one error type the project raises for problems a user can fix."""


class HashHopError(Exception):
    """Bad parameters, missing or malformed files: the CLI prints the message and exits 2."""
