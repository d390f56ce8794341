"""The one exception type a user can cause; the CLI turns it into one line and exit 2."""


class PlaceprintError(Exception):
    """An error caused by input or settings; its message says what to do."""
