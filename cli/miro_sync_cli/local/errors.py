class LocalStackError(Exception):
    """A problem with the local stack that the user can fix; the message says what."""
