"""Templates of `coflows add query|agent LANG NAME`: one query and one agent per language.

`XXX` becomes the name, `$WID$` stays for the engines to replace with the workflow ID. Each
template builds and runs as written (tests/test_dev_ergonomics.py adds and calls every one).
"""

from __future__ import annotations

LANGUAGES = {"py": "py", "python": "py", "cs": "cs", "csharp": "cs", "c#": "cs", "java": "java",
             "js": "js", "javascript": "js"}

QUERIES = {
    "py": ('### <api name="Hello">\n###   <description>Says hello.</description>\n'
           '###   <param name="name" type="string">who</param>\n### </api>\n'
           'def Hello(name: str = "world") -> str:\n    return f"Hello, {name}!"\n'),
    "cs": ('using System;\n\npublic class XXX\n{\n    /// <api name="Hello">\n    ///   <description>Says hello.</description>\n'
           '    /// </api>\n    public static string Hello(string name)\n    {\n        return "Hello, " + name + "!";\n    }\n}\n'),
    "java": ('public class XXX {\n    /// <api name="Hello">\n    ///   <description>Says hello.</description>\n    /// </api>\n'
             '    public static String Hello(String name) {\n        return "Hello, " + name + "!";\n    }\n}\n'),
    "js": ('/// <api name="Hello">\n///   <description>Says hello.</description>\n/// </api>\n'
           '/** @param {string} name */\nfunction Hello(name) {\n    return "Hello, " + name + "!";\n}\n'),
}

AGENTS = {
    "py": '''"""Agent XXX: reacts to changes of the M topic "XXX" and runs on a schedule."""


def Load(entries):
    print(len(entries or []), "entries at start")


def Add(id, value):
    print("added", id, value)


def Exchange(id, value):
    print("changed", id, value)


def Remove(id, value):
    print("removed", id, value)


def Body(data):
    """A message (POST /flow/agent/<ID>): its answer."""
    return data


def Job(timestamp, execution_type):
    print("job", timestamp, execution_type)


def pkg():
    return {
        "ID": "$WID$-XXX",
        "Name": "XXX",
        "Description": "XXX agent",
        "MID": "XXX",  # the M topic it watches
        "Schedule": "0 * * ? * *",  # second 0 of every minute
        "Load": Load, "Add": Add, "Exchange": Exchange, "Remove": Remove, "Body": Body, "Job": Job,
    }
''',
    "cs": '''// Agent XXX: reacts to changes of the M topic "XXX" and runs on a schedule.
using System;
using Coflows;

public class XXX
{
    public static void Load(object[] entries)
    {
        Console.WriteLine((entries == null ? 0 : entries.Length) + " entries at start");
    }

    public static void Add(string id, object value)
    {
        Console.WriteLine("added " + id + " " + Json.Serialize(value));
    }

    public static void Exchange(string id, object value)
    {
        Console.WriteLine("changed " + id + " " + Json.Serialize(value));
    }

    public static void Remove(string id, object value)
    {
        Console.WriteLine("removed " + id);
    }

    /// A message (POST /flow/agent/<ID>), as JSON text: its answer.
    public static object Body(object data)
    {
        return data;
    }

    public static void Job(DateTime timestamp, string executionType)
    {
        Console.WriteLine("job " + timestamp.ToString("HH:mm:ss") + " " + executionType);
    }

    public static FPKG pkg()
    {
        return new FPKG(
            "$WID$-XXX",          // ID
            "$WID$",              // WorkflowID
            "XXX",                // Name
            "XXX agent",          // Description
            "XXX",                // MID: the M topic it watches
            Utils.SetFunction("Load", new Load(Load)),
            Utils.SetFunction("Add", new MCallback(Add)),
            new MCallback(Exchange),
            new MCallback(Remove),
            new Body(Body),
            "0 * * ? * *",        // ScheduleCommand: second 0 of every minute
            new Job(Job));
    }
}
''',
    "java": '''// Agent XXX: reacts to changes of the M topic "XXX" and runs on a schedule.
import coflows.Agent;
import coflows.FPKG;

import java.time.ZonedDateTime;

public class XXX {
    public static void Load(Object[] entries) {
        System.out.println((entries == null ? 0 : entries.length) + " entries at start");
    }

    public static void Add(String id, Object value) {
        System.out.println("added " + id + " " + Agent.json(value));
    }

    public static void Exchange(String id, Object value) {
        System.out.println("changed " + id + " " + Agent.json(value));
    }

    public static void Remove(String id, Object value) {
        System.out.println("removed " + id);
    }

    /// A message (POST /flow/agent/<ID>), as JSON text: its answer.
    public static Object Body(Object data) {
        return data;
    }

    public static void Job(ZonedDateTime timestamp, String executionType) {
        System.out.println("job " + timestamp.toLocalTime() + " " + executionType);
    }

    public static FPKG pkg() {
        return new FPKG(
            "$WID$-XXX",          // ID
            "$WID$",              // WorkflowID
            "XXX",                // Name
            "XXX agent",          // Description
            "XXX",                // MID: the M topic it watches
            XXX::Load,
            XXX::Add,
            XXX::Exchange,
            XXX::Remove,
            XXX::Body,
            "0 * * ? * *",        // ScheduleCommand: second 0 of every minute
            XXX::Job);
    }
}
''',
    "js": '''// Agent XXX: reacts to changes of the M topic "XXX" and runs on a schedule.
// M calls return Promises: `await` them (hooks may be async).

function Load(entries) {
  console.log(`${entries.length} entries at start`)
}

function Add(id, value) {
  console.log("added", id, value)
}

function Exchange(id, value) {
  console.log("changed", id, value)
}

function Remove(id, value) {
  console.log("removed", id)
}

// A message (POST /flow/agent/<ID>): the request's JSON body, parsed; returns the answer.
function Body(message) {
  return message
}

function Job(timestamp, executionType) {
  console.log(`job ${timestamp.toISOString()} ${executionType}`)
}

function pkg() {
  return {
    ID: "$WID$-XXX",
    WorkflowID: "$WID$",
    Name: "XXX",
    Description: "XXX agent",
    MID: "XXX",                      // the M topic it watches
    Load: Load,
    Add: Add,
    Exchange: Exchange,
    Remove: Remove,
    Body: Body,
    ScheduleCommand: "0 * * ? * *",  // second 0 of every minute
    Job: Job,
  }
}
''',
}

# `coflows add dash NAME` (CoFlows' `add.sh dash`): a Dash app served at /dash/<workflow ID>/NAME.py/
# (coflows/apps). Its Pip: DASH_PIP, added to package.json with it.
DASH_PIP = "dash>=2.11"
DASH = '''"""Dash app XXX, served by coflows at /dash/$WID$/XXX.py/ to callers with Read on the workflow.

On the first request coflows calls run(port, path) on a worker thread: start the app's server on
127.0.0.1:port (never another address), serving under `path`, in a thread, and return the server.
When this file changes, coflows calls that server's shutdown() and run() of the new version.
with_viewer() makes each request run as the user viewing the app: coflows.user(),
coflows.permission() and coflows.call("Other.py/fn", ...) in callbacks see them and this workflow.
"""

import logging
import threading
from pathlib import Path

import dash
from dash import Input, Output, dcc, html
from werkzeug.serving import make_server

import coflows
from coflows.apps.wsgi import with_viewer

ASSETS = Path(__file__).resolve().parent.parent / "Files" / "assets"  # CSS/JS served with the app, if any
LEVELS = {0: "view", 1: "read", 2: "write"}


def layout():
    return html.Div([
        html.H3("XXX"),
        html.P(id="who"),
        dcc.Input(id="points", type="number", value=5, min=1, max=100),
        dcc.Graph(id="chart"),
    ])


### <api name="run">
###   <description>Starts the app (coflows calls it on the first request; over HTTP only Write may).</description>
###   <permissions><group id="$WID$" permission="write"/></permissions>
### </api>
def run(port: int, path: str):
    app = dash.Dash(__name__, url_base_pathname=path, assets_folder=str(ASSETS), title="XXX")
    app.layout = layout

    @app.callback(Output("chart", "figure"), Output("who", "children"), Input("points", "value"))
    def chart(points):
        n = max(1, min(int(points or 1), 100))
        xs = list(range(n))
        figure = {"data": [{"x": xs, "y": [x * x for x in xs], "mode": "lines", "name": "x²"}],
                  "layout": {"margin": {"l": 40, "b": 30, "t": 10, "r": 0}}}
        level = coflows.permission("$WID$")
        return figure, f"{coflows.user().id} ({LEVELS.get(level, level)})"

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request in the server's log
    server = make_server("127.0.0.1", port, with_viewer(app.server, path), threaded=True)
    threading.Thread(target=server.serve_forever, name="dash XXX", daemon=True).start()
    return server
'''
