"""Exceptions. Every error a user can cause is a :class:`CryopickError` whose message is one clear line
saying what was wrong (file, line, field) and what to do; the CLI prints it without a traceback."""


class CryopickError(Exception):
    """Base class for errors caused by input or configuration, shown to the user as one line."""


class InputError(CryopickError):
    """A file or value given by the user is unreadable or invalid."""


class UnknownComponentError(CryopickError, KeyError):
    """A picker, backbone, loss, ... name that no installed plugin registers."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class PluginLoadError(CryopickError):
    """A plugin the user asked for failed to import or load."""


class DuplicateComponentError(CryopickError):
    """Two plugins register the same name for one kind of component."""


class StoreError(CryopickError):
    """The project store cannot be opened, is locked by another writer, or has the wrong schema."""


class StoreLockedError(StoreError):
    """Another process is writing to the project store."""


class ConfigError(CryopickError):
    """A ``--set key=value`` or other setting is unknown or has a bad value."""
