"""Schedules and sensors described in the UI by their own docstring.

Dagster shows a sensor's or schedule's `description` on the Automation page but does not
take it from the function's docstring (as it does for assets); `described` does, so the text
a reader sees in the code is the text an operator sees in the UI."""

import inspect
from collections.abc import Callable
from typing import Any


def described(decorator: Callable[..., Callable], **options: Any) -> Callable[[Callable], Any]:
    """`@described(dg.sensor, job=..., ...)`: `@dg.sensor(..., description=<docstring>)`."""

    def decorate(function: Callable) -> Any:
        return decorator(description=inspect.getdoc(function), **options)(function)

    return decorate
