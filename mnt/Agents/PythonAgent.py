"""Example agent: acknowledges the orders placed through `PythonQuery.py/PlaceOrder`.

It watches the M topic "orders". For every new order it adds a status entry to the
topic "order-status"; every minute it logs how many orders there are; a message
(`POST /flow/agent/$WID$-PythonAgent`) answers with the counts.

    curl -X POST -H "x-api-key: $KEY" -d '{}' http://localhost:8080/flow/agent/<WID>-PythonAgent
"""

import json

from coflows.agents.definition import FPKG
from coflows.m import M


def Load(orders):
    """Once at start, with every order already in the topic."""
    print(f"{len(orders)} orders at start")


def Add(id, order):
    """A new order: acknowledge it in another topic (each write is durable when Add returns)."""
    M.Base("order-status").Add({"order": id, "item": order.get("item"), "status": "received"})


def Exchange(id, order):
    print(f"order {id} is now {order}")


def Remove(id, order):
    print(f"order {id} was removed")


def Body(data):
    """A message: JSON text, as in CoFlows. At start it is {"Function": "Main", ...}."""
    message = json.loads(data)
    if message.get("Function") == "Main":
        return "started"
    return {"orders": M.Base("orders").Count(), "acknowledged": M.Base("order-status").Count()}


def Job(timestamp, execution_type):
    print(f"{timestamp:%H:%M:%S} ({execution_type}): {M.Base('orders').Count()} orders")


def pkg():
    return FPKG(
        "$WID$-PythonAgent",  # ID
        "$WID$",  # WorkflowID
        "Python Agent",  # Name
        "Acknowledges orders placed through PythonQuery.py/PlaceOrder",  # Description
        "orders",  # MID: the M topic it watches
        Load, Add, Exchange, Remove, Body,
        "0 * * ? * *",  # ScheduleCommand: second 0 of every minute
        Job,
    )
