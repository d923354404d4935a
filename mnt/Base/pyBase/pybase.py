"""Shared Python library of the example workflow (a Base module).

Queries and agents import it as `import pybase` (or `from pyBase import pybase`).
"""

import datetime as _dt

GREETING = "Hello from Base"


def greet(name: str) -> str:
    return f"{GREETING}, {name}!"


def moving_average(values: list[float], window: int) -> list[float]:
    if window <= 0:
        raise ValueError("window must be positive")
    out = []
    for i in range(len(values) - window + 1):
        out.append(sum(values[i:i + window]) / window)
    return out


def today() -> _dt.date:
    return _dt.date.today()
