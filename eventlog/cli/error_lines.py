"""How the command line fails: every error, a usage error too, as one `eventlog: ...` line."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import IO, Any, TypeVar

import click

from ..errors import EventlogError
from .tree import printable

__all__ = ["CommandLine", "OneLineError", "OneLineUsageError", "clean_errors", "one_line_errors"]

F = TypeVar("F", bound=Callable[..., Any])


def clean_errors(command: F) -> F:
    """Print an eventlog (or file system) error as one line and exit 1, never a traceback."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except EventlogError as exc:
            click.echo(printable(f"eventlog: {type(exc).__name__}: {exc}"), err=True)
            sys.exit(1)
        except OSError as exc:
            click.echo(printable(f"eventlog: {type(exc).__name__}: {exc}"), err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


class OneLineError(click.ClickException):
    """A click error shown as one ``eventlog: ...`` line, like every other error."""

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"eventlog: {printable(self.format_message())}", err=True)


class OneLineUsageError(OneLineError):
    exit_code = click.UsageError.exit_code


@contextmanager
def one_line_errors() -> Iterator[None]:
    try:
        yield
    except (OneLineError, click.exceptions.NoArgsIsHelpError):
        raise  # already one line; or the help that a bare `eventlog` prints
    except click.UsageError as exc:
        hint = f" Try '{exc.ctx.command_path} --help'." if exc.ctx is not None else ""
        raise OneLineUsageError(exc.format_message() + hint) from None
    except click.ClickException as exc:
        raise OneLineError(exc.format_message()) from None


class CommandLine(click.Group):
    """The `eventlog` group: usage errors (parsing, a bad value) print one line too."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        with one_line_errors():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        with one_line_errors():
            return super().invoke(ctx)
