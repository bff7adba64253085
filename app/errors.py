"""Errors raised by the training job, the model store and the services.

Every error the product raises on purpose derives from ``SegmentsError`` and carries a
message written for the person who has to fix the input. The HTTP layer maps them to
problem bodies; the CLI prints them and exits non-zero.

    SegmentsError
    ├── ConfigError            the training config is invalid (unknown key, bad value)
    ├── DataError              the training or batch data is unusable (missing column, wrong type,
    │                          empty file, all-missing feature, fewer rows than segments)
    ├── RuleSyntaxError        a rule condition does not parse or names an unknown feature
    ├── NameTaken              a segment's new name is another segment's of the version
    └── StoreError             the model store cannot do what was asked (unknown version, ...)
        ├── IntegrityError     an artefact's hash or library versions do not match its manifest
        └── StoreWriteError    the store's folder cannot be written (read-only, full disk, ...)
"""

from __future__ import annotations


class SegmentsError(Exception):
    """Base class of every error the product raises on purpose."""


class ConfigError(SegmentsError):
    """The training configuration is invalid."""


class DataError(SegmentsError):
    """The input data cannot be used as it is."""


class RuleSyntaxError(ConfigError):
    """A rule segment's condition does not parse, or names an unknown feature."""


class NameTaken(SegmentsError):
    """A segment would take the name another segment of the same version has."""


class StoreError(SegmentsError):
    """The model store cannot do what was asked."""


class IntegrityError(StoreError):
    """An artefact does not match its manifest (hash or library versions)."""


class StoreWriteError(StoreError):
    """The model store's folder cannot be written: the message names it and the OS reason."""
