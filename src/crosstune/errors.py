"""The one exception type for user errors; the CLI prints it as `error: ...` and exits 2."""


import re

MAX_WORD = 300  # a run of characters without a space longer than this is cut in the middle
MAX_MESSAGE = 2000


class CrosstuneError(Exception):
    """A problem with the user's input (file, config, argument), not a bug in crosstune."""


def shorten(text: str) -> str:
    """Cut what a user's huge value would make huge in a message: long words keep their head and tail, and the
    whole keeps its start and end (where the location and the expectation are)."""
    text = re.sub(r"\S{%d,}" % (MAX_WORD + 1),
                  lambda m: f"{m.group()[:200]}...[{len(m.group()) - 260} characters cut]...{m.group()[-60:]}", text)
    if len(text) > MAX_MESSAGE:
        text = f"{text[:1200]} ...[{len(text) - 1800} characters cut]... {text[-600:]}"
    return text


def where(path, line: int | None = None, field: str | None = None) -> str:
    """Format a location as `path:line field 'x'` for error messages."""
    loc = str(path)
    if line is not None:
        loc += f":{line}"
    if field is not None:
        loc += f" field '{field}'"
    return loc
