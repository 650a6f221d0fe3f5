"""One exception hierarchy for everything ravemap reports to a user.

Every message names the file or field, the bad value, and what is allowed, so that a
performer can fix the problem without reading code.
"""


class RavemapError(Exception):
    """Base of every error ravemap raises on purpose."""

    exit_code = 1


class ConfigError(RavemapError):
    """A config file or command-line value is wrong."""

    exit_code = 2


class ModelError(RavemapError):
    """A model file is missing, unreadable, or not a RAVE/nn~ TorchScript export."""

    exit_code = 3


class SourceError(RavemapError):
    """An audio loop file is missing or unreadable."""

    exit_code = 3


class DeviceError(RavemapError):
    """An audio device cannot be found or opened."""

    exit_code = 4


class MappingError(RavemapError):
    """A mapping file is missing, corrupt, or from another program or version."""

    exit_code = 5
