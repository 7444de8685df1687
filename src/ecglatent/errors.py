"""Errors that reach the user as a message, never as a traceback."""


class EcglatentError(Exception):
    """A problem the user can fix; the CLI prints the message and exits non-zero."""


class ConfigError(EcglatentError):
    """params.yaml is missing, malformed, or holds a value out of range."""


class RecordError(EcglatentError):
    """One record cannot be used; the reason goes to the rejects file."""

    def __init__(self, record: str, reason: str) -> None:
        super().__init__(f"{record}: {reason}")
        self.record = record
        self.reason = reason
