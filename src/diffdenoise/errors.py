"""One exception type for problems the user can fix; the CLI prints it as a single line."""


class DiffDenoiseError(Exception):
    """Bad input, bad parameter, missing weights: anything reported to the user as one line, exit code 2."""
