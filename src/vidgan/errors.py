"""User-facing errors: one sentence that names the file or flag and the problem.

The CLI prints a `VidganError` without a traceback and exits with code 2 (a traceback only with
`--debug`), so every check on user input should raise one of these, never a bare assert.
"""

from __future__ import annotations


class VidganError(Exception):
    """A problem with the user's input (file, flag, config), reported as one sentence."""


class DataError(VidganError):
    """A dataset, video or image that cannot be used as it is."""


class ConfigError(VidganError):
    """An unknown or badly typed config key, preset, model or flag."""


class CheckpointError(VidganError):
    """A checkpoint that is missing, truncated, or belongs to another model/config."""
