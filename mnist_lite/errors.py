"""The one exception type the CLI and the notebooks turn into a one-line message."""


class MnistLiteError(Exception):
    """A problem the user can fix: bad data, a bad argument, a run that diverged or was stopped.

    ``exit_code`` is what the command line exits with; the message is one line that says
    what is wrong and, where it can, what to do.
    """

    exit_code = 1
