"""Exceptions raised by diffcode. Every message says what went wrong and what to do."""


class DiffcodeError(Exception):
    """Base class of every error diffcode raises on purpose."""


class ImageError(DiffcodeError):
    """An input image is unreadable, not 8-bit RGB, or of an unsupported size."""


class CorruptFileError(DiffcodeError):
    """A compressed file (or a section of it) is truncated, corrupt or not a diffcode file."""


class DecoderMismatchError(DiffcodeError):
    """A file was made with a different decoder checkpoint than the one loaded."""


class ChecksumError(CorruptFileError):
    """The decoded pixels do not match the checksum stored in the file."""


class OutputExistsError(DiffcodeError):
    """Refusing to overwrite an existing output path."""


class UsageError(DiffcodeError, ValueError):
    """A bad argument to a diffcode function or command (unknown split, out-of-range budget, ...)."""
