"""The errors that reach users as a one-line message and exit status 2 (anything else is a bug: a traceback)."""


class UserInputError(Exception):
    """Bad input from the user: a file, option or value. The message names what is wrong and where."""


class InvalidArgument(UserInputError, ValueError):
    """A library function was given a bad value for one of its arguments.

    The message names the API argument (`num must be at least 1`); the command line reports the same error under
    the flag that set it (`--num must be at least 1`), so validation is written once, in the library.
    """

    def __init__(self, argument: str, problem: str) -> None:
        super().__init__(f"{argument} {problem}")
        self.argument, self.problem = argument, problem


class TrainingStopped(Exception):
    """Training stopped itself (a non-finite loss or weight): a one-line message naming the step and where to go
    on from; exit status 1."""
