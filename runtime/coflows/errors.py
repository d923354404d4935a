"""Errors that say where: file, line, field or parameter.

Every error a user can cause derives from `CoflowsError`, so the CLI and the
server can turn it into a clear message (and an exit status or an HTTP status)
without a Python traceback.
"""

from __future__ import annotations

from dataclasses import dataclass


class CoflowsError(Exception):
    """Base of every error caused by user input (config, manifest, code, arguments)."""

    http_status = 500


class ConfigError(CoflowsError):
    """`coflows_config.json` is missing or invalid; the message names file, JSON path and reason."""


class ManifestError(CoflowsError):
    """A workspace `package.json` is missing or invalid, or names a file that does not exist."""


@dataclass
class SourceError:
    """One compile/load diagnostic against a user's file."""

    file: str
    line: int | None
    message: str
    column: int | None = None

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return f"{where}: {self.message}"


class CompileError(CoflowsError):
    """A source file failed to compile or load; carries one or more `SourceError`s."""

    def __init__(self, errors: list[SourceError] | SourceError):
        self.errors = [errors] if isinstance(errors, SourceError) else list(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


class NotFoundError(CoflowsError):
    """Unknown workflow, query, function, agent, topic or run."""

    http_status = 404


class ArgumentError(CoflowsError):
    """An argument is missing, extra or does not convert to the declared type."""

    http_status = 400

    def __init__(self, message: str, parameter: str | None = None):
        self.parameter = parameter
        super().__init__(message)


class PermissionDenied(CoflowsError):
    """The caller lacks the permission a function or workflow requires."""

    http_status = 403


class Unauthenticated(CoflowsError):
    """No (valid) credentials where credentials are required."""

    http_status = 401


class UserCodeError(CoflowsError):
    """An exception raised by user code in any language.

    `type_name` is the language's own exception type (e.g. `System.DivideByZeroException`,
    `java.lang.ArithmeticException`, `TypeError`), `stack` its stack trace as text.
    """

    http_status = 500

    def __init__(self, type_name: str, message: str, stack: str = "", language: str = "python"):
        self.type_name = type_name
        self.message = message
        self.stack = stack
        self.language = language
        super().__init__(f"{type_name}: {message}")


class CallTimeout(CoflowsError):
    """A call exceeded its time limit."""

    http_status = 504
