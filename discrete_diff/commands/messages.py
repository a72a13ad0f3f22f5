"""The one line a user error becomes, wherever it is shown: the command line, or the web app's page."""

from __future__ import annotations

from ..errors import InvalidArgument, UserInputError
from .sampling_options import FLAGS


def _innermost_user_error(error: BaseException) -> BaseException:
    """Config parsers wrap the errors our constructors raise; report the original, not the wrapping."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, UserInputError):
            return current
        current = current.__cause__ or current.__context__
    return error


def user_message(error: BaseException) -> str:
    """One line; a library argument's error is reported under the flag that set it."""
    error = _innermost_user_error(error)
    if isinstance(error, InvalidArgument):
        flag = FLAGS.get(error.argument, f"--{error.argument.replace('_', '-')}")
        return f"{flag} {error.problem}"
    return " ".join(str(error).split()) or type(error).__name__
