"""The one exception type that reaches users as a one-line message and exit status 2."""


class UserInputError(Exception):
    """Bad input from the user: a file, option or value. The message names what is wrong and where."""
