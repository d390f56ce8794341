"""Progress bars that never get in the way of the output a user reads."""

from __future__ import annotations


def progress_bar(quiet: bool = False, *columns):
    """A transient ``rich`` progress bar on stderr, shown only on a terminal (a bar drawn
    into a pipe or a log leaves blank lines before the tables on stdout)."""
    from rich.console import Console
    from rich.progress import Progress

    console = Console(stderr=True)
    return Progress(
        *columns, console=console, disable=quiet or not console.is_terminal, transient=True
    )
