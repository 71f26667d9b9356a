"""User-facing errors: one clear line naming the problem and the file, never a traceback."""


class TinysenseError(Exception):
    """An error the command line prints as a single line and exits non-zero on."""


class BundleError(TinysenseError):
    """A model bundle is missing, corrupt, or does not match its manifest."""


class InputError(TinysenseError):
    """Input data (image, audio, data folder) cannot be used."""


class OutputError(TinysenseError):
    """A result cannot be written where it was asked to go."""
