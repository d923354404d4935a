### <info version="1.0.0">
###   <title>Python example query</title>
###   <description>Every feature of a Python query: typed and untyped arguments, tables, errors, Base imports.</description>
### </info>
import datetime as dt
from decimal import Decimal

import pybase
from coflows.m import M


### <api name="Add">
###   <description>Adds two integers.</description>
###   <returns>x + y</returns>
###   <param name="x" type="integer">first number</param>
###   <param name="y" type="integer">second number</param>
###   <permissions><group id="$WID$" permission="read"/></permissions>
### </api>
def Add(x: int, y: int) -> int:
    return x + y


### <api name="Concat">
###   <description>Untyped parameters get strings, as in CoFlows.</description>
### </api>
def Concat(a, b):
    return a + b


def Hello(name: str = "world") -> str:
    """Greets through the Base library."""
    return pybase.greet(name)


def Prices(days: int = 5) -> list[dict]:
    """A table-like result: a list of rows (try Prices.csv)."""
    start = dt.date(2024, 1, 1)
    return [
        {"date": start + dt.timedelta(days=i), "price": Decimal("100.5") + i, "volume": 1000 * (i + 1)}
        for i in range(days)
    ]


def MovingAverage(values: list[float], window: int = 2) -> list[float]:
    """Lists arrive as JSON (`?values=[1,2,3]`) or comma-separated (`?values=1,2,3`)."""
    return pybase.moving_average(values, window)


def Fail(message: str = "something went wrong"):
    """Raises, to show how errors come back (500 with the type and message)."""
    raise ValueError(message)


def Echo(payload: str):
    """A single string parameter: a POST body arrives as raw JSON text (CoFlows compatibility)."""
    return {"received": payload, "length": len(payload)}


def Now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


### <api name="PlaceOrder">
###   <description>Places an order in the M topic "orders", which Agents/PythonAgent.py acknowledges in "order-status".</description>
###   <returns>the order's entry id</returns>
###   <param name="item" type="string">what</param>
###   <param name="qty" type="integer">how many</param>
### </api>
def PlaceOrder(item: str, qty: int) -> str:
    return M.Base("orders").Add({"item": item, "qty": qty})


# --- functions used by the example flow "prices-report" (see package.json "Flows") ---

def Summary(input) -> dict:
    """Receives its parent's output (a list of price rows) as `input[0]`."""
    rows = input[0]
    prices = [float(r["price"]) for r in rows]
    return {"days": len(rows), "average": sum(prices) / len(prices) if prices else None}


def Report(Summary: dict, MovingAverage: list[float]) -> dict:
    """Parameters named after parent nodes receive those parents' outputs.

    The result carries cloudmesh display hints (color, label) for the live DAG view;
    only `value` is the output passed on.
    """
    return {"value": {"summary": Summary, "trend": MovingAverage},
            "color": "green", "label": f"average {Summary['average']:.2f}"}
