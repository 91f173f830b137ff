"""User-facing errors.

Every problem a user can fix (a missing file, a bad recipe key, an empty corpus) is raised as a
:class:`SeqVAEError` whose message says what was wrong, where, and what to do. The CLI prints the
message and exits with status 2 instead of showing a traceback.
"""

__all__ = ["SeqVAEError"]


class SeqVAEError(ValueError):
    """An error caused by user input, with a message meant to be read by that user."""
