"""The one exception type for user errors; the CLI prints it as `error: ...` and exits 2."""


class CrosstuneError(Exception):
    """A problem with the user's input (file, config, argument), not a bug in crosstune."""


def where(path, line: int | None = None, field: str | None = None) -> str:
    """Format a location as `path:line field 'x'` for error messages."""
    loc = str(path)
    if line is not None:
        loc += f":{line}"
    if field is not None:
        loc += f" field '{field}'"
    return loc
