"""Java agents and the Java M binding (`coflows.FPKG`, `coflows.M`, from `host/coflows/`).

* `definition_from_handle`: after an agent file compiles, the engine opens a host
  `coflows.jvm.AgentHandle` on it, which calls the factory (package.json `Exe`, default `pkg`:
  a public static method without parameters of the file's class) and keeps the `FPKG` it
  returns. The `AgentDefinition` made here has Python callables for the hooks that call the
  handle: values go to Java as JSON text and arrive as `Map`, `List`, `String`, `Long`,
  `Double`, `Boolean` or null; `Body` gets the message as JSON text (as in CoFlows) and its
  result comes back as JSON; `Job` gets a `java.time.ZonedDateTime`. A Java exception in a
  hook is a `UserCodeError`. Python never holds the user's objects (only the host handle).
  What a hook's thread prints to `System.out` goes to its run record (`HookOutput`).
* CoFlows' form: a factory returning `CLRRuntime.CreateInstance("QuantApp.Engine.FPKG", …)` (a
  `CLRObject` over a Python FPKG whose hooks are `CreateDelegate` lambdas): each lambda becomes a
  hook run through the same handle (`AgentHandle.apply`), with `x` as CoFlows gave it.
* `m_call`: the Python side of `coflows.M` (`Callback.m`), answering with a JSON envelope;
  `caller_call` the side of `coflows.User` (`Callback.caller`).
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path
from typing import Any

from coflows.agents.definition import FPKG, HOOKS, M_HOOKS, AgentDefinition, AgentError, definition_from
from coflows.errors import CoflowsError, UserCodeError
from coflows.serialize import to_json_bytes


def _caller(host: Any) -> Any:
    """`call(method, *args)`: run a hook's Java method with its output captured and its errors converted."""
    from coflows.engines.jvm import _java_error, _note_thread, _user_error

    UserFailure, JException, output = host.UserFailure, host.JException, host.HookOutput

    def call(method: Any, *args: Any) -> Any:
        _note_thread(host)  # so that the engine's interrupt finds this thread's Java thread
        output.begin()  # System.out of this thread goes to the run record (through sys.stdout)
        try:
            return method(*args)
        except UserFailure as e:
            raise _user_error(e) from None
        except JException as e:
            raise _java_error(e) from None
        finally:
            text = str(output.end())
            if text:
                sys.stdout.write(text)

    return call


def _hook(name: str, handle: Any, host: Any, label: str) -> Any:
    from coflows.engines.jvm import _json_arg

    call = _caller(host)
    if name == "Load":
        def load(values: Any) -> None:
            call(handle.load, None if values is None else _json_arg(list(values)))
        fn = load
    elif name in ("Add", "Exchange", "Remove"):
        def m_callback(entry_id: Any, value: Any, _hook: str = name) -> None:
            call(handle.m, _hook, None if entry_id is None else str(entry_id), _json_arg(value))
        fn = m_callback
    elif name == "Body":
        def body(data: Any) -> Any:
            return json.loads(str(call(handle.body, _json_arg(data))))
        fn = body
    else:
        def job(timestamp: Any, execution_type: Any) -> None:
            zone = getattr(getattr(timestamp, "tzinfo", None), "key", None)
            call(handle.job, timestamp.isoformat(), zone, str(execution_type))
        fn = job
    fn.__qualname__ = fn.__name__ = f"{name} (Java {label})"
    return fn


def definition_from_handle(host: Any, loader: Any, class_name: str, exe: str | None, *, workflow_id: str,
                           source: str, file_name: str) -> AgentDefinition:
    """Call the agent's factory and turn its FPKG into an AgentDefinition (AgentError if it cannot)."""
    from coflows.engines.jvm import _java_error, _user_error

    exe = exe or "pkg"
    host.HookOutput.install()
    try:
        handle = host.AgentHandle.open(loader, class_name, exe, workflow_id)
    except host.UserFailure as e:
        err = _user_error(e)
        raise AgentError(f"{source}: {exe}() failed: {err}\n{getattr(err, 'stack', '')}".rstrip()) from None
    except host.JException as e:
        if str(e.getClass().getName()) == "java.lang.IllegalArgumentException":
            raise AgentError(f"{source}: {e.getMessage()}") from None
        raise AgentError(f"{source}: {_java_error(e)}") from None
    label = class_name.rsplit(".", 1)[-1]
    clr = handle.clrPackage()
    if clr is not None:  # CoFlows' form: CLRRuntime.CreateInstance("QuantApp.Engine.FPKG", ...)
        return _definition_from_clr(host, handle, clr, label, workflow_id=workflow_id, source=source,
                                    file_name=file_name)
    desc = json.loads(str(handle.describe()))
    data: dict[str, Any] = {k: desc.get(k) for k in ("ID", "WorkflowID", "Name", "Description", "MID",
                                                       "ScheduleCommand")}
    for hook in desc.get("Hooks", []):
        data[hook] = _hook(hook, handle, host, label)
    stem = Path(file_name).stem
    return definition_from(data, workflow_id=workflow_id, default_id=f"{workflow_id}-{stem}", default_name=stem,
                           source=source, language="java")


# -- CoFlows' form: an FPKG made in Python through app.quant.clr, hooks that are Java lambdas ------


def _definition_from_clr(host: Any, handle: Any, clr: Any, label: str, *, workflow_id: str, source: str,
                         file_name: str) -> AgentDefinition:
    from coflows import objects

    pkg = objects.HANDLES.get(int(clr.getHandle()))
    data: dict[str, Any] = {k: getattr(pkg, k, None) for k in FPKG.__slots__}
    if all(v is None for v in data.values()):
        raise AgentError(f"{source}: the factory returned a {objects.members.type_name(pkg)}; expected "
                         "CLRRuntime.CreateInstance(\"QuantApp.Engine.FPKG\", ...)")
    for hook in HOOKS:
        fn = _java_function(data.get(hook))
        if fn is not None:
            data[hook] = _clr_hook(hook, fn, handle, host, label)
    stem = Path(file_name).stem
    return definition_from(data, workflow_id=workflow_id, default_id=f"{workflow_id}-{stem}", default_name=stem,
                           source=source, language="java")


def _java_function(fn: Any) -> Any:
    """The JavaFunction behind a hook (CreateDelegate's callable, maybe wrapped by a delegate type), or None."""
    from coflows.engines.jvm.bridge import JavaFunction

    for _ in range(4):
        if isinstance(fn, JavaFunction):
            return fn
        fn = getattr(fn, "__wrapped__", None)
        if fn is None:
            return None
    return None


def _clr_hook(name: str, jfn: Any, handle: Any, host: Any, label: str) -> Any:
    """A CoFlows Java delegate as a hook: its lambda gets `x` as CoFlows gave it.

    Load: the topic's values; Add/Exchange/Remove: `{id, value}`; Body: `{json text}` (the result
    comes back as JSON); Job: `{ZonedDateTime, execution type}`. JSON values arrive as `Map`,
    `List`, `String`, `Long`, `Double`, `Boolean` or null, as in `coflows.FPKG` agents.
    """
    import jpype

    from coflows.engines.jvm import _json_arg

    call = _caller(host)
    conv = jfn.conv
    Json = jpype.JClass("coflows.jvm.Json", loader=host.loader)
    ZonedDateTime = jpype.JClass("java.time.ZonedDateTime")

    def value(v: Any) -> Any:
        return None if v is None else Json.parse(_json_arg(v), False)

    def run(*xs: Any) -> Any:
        return call(handle.apply, jfn.fn, conv.Objects(list(xs)))

    if name == "Load":
        def load(values: Any) -> None:
            run(*(value(v) for v in (values or ())))
        fn = load
    elif name in M_HOOKS:
        def m_callback(entry_id: Any, v: Any) -> None:
            run(None if entry_id is None else jpype.JString(str(entry_id)), value(v))
        fn = m_callback
    elif name == "Body":
        def body(data: Any) -> Any:
            r = run(jpype.JString(_json_arg(data)))
            py = conv.to_python(r)  # a value, or the Python object behind a CLRObject
            return json.loads(str(Json.write(r))) if isinstance(py, jpype.JObject) else py
        fn = body
    else:
        def job(timestamp: Any, execution_type: Any) -> None:
            zone = getattr(getattr(timestamp, "tzinfo", None), "key", None)
            at = ZonedDateTime.parse(timestamp.isoformat())
            if zone:
                try:
                    at = at.withZoneSameInstant(jpype.JClass("java.time.ZoneId").of(zone))
                except Exception:  # noqa: BLE001 - an unknown zone name: keep the offset
                    pass
            run(at, jpype.JString(str(execution_type)))
        fn = job
    fn.__qualname__ = fn.__name__ = f"{name} (Java {label})"
    return fn


# -- M for Java ----------------------------------------------------------------------------------
_M_OPS = {
    "add": lambda s, a: s.add(a[0]),
    "exchange": lambda s, a: s.exchange(a[0], a[1]),
    "remove": lambda s, a: s.remove(a[0]),
    "get": lambda s, a: s.get(a[0]),
    "find": lambda s, a: s.find(a[0]),
    "count": lambda s, a: s.count(),
    "list": lambda s, a: s.list(),
    "entries": lambda s, a: s.entries(),
    "clear": lambda s, a: s.clear(),
}


def caller_call(op: Any, args_json: Any) -> str:
    """`coflows.User` from Java (on the calling thread: the thread's call is the caller's)."""
    from coflows import caller

    try:
        if str(op) == "user":
            return to_json_bytes({"ok": caller.user_json()}).decode()
        if str(op) == "permission":
            args = json.loads(str(args_json))
            return to_json_bytes({"ok": caller.permission(args[0] if args else None)}).decode()
        raise CoflowsError(f"unknown caller operation '{op}'")
    except CoflowsError as e:
        err = {"type": type(e).__name__, "message": str(e), "language": "coflows"}
    except Exception as e:  # noqa: BLE001 - every failure goes back to Java as an exception
        err = {"type": type(e).__qualname__, "message": str(e), "language": "python"}
    return json.dumps({"error": err})


def m_call(op: Any, topic: Any, args_json: Any) -> str:
    """`coflows.M` from Java: `{"ok": result}` or `{"error": {type, message, language}}` (JSON text)."""
    from coflows.m.api import MSet

    try:
        fn = _M_OPS.get(str(op))
        if fn is None:
            raise CoflowsError(f"unknown M operation '{op}'")
        args = json.loads(str(args_json))
        return to_json_bytes({"ok": fn(MSet(str(topic)), args)}).decode()
    except UserCodeError as e:
        err = {"type": e.type_name, "message": e.message, "language": e.language}
    except CoflowsError as e:
        err = {"type": type(e).__name__, "message": str(e), "language": "coflows"}
    except Exception as e:  # noqa: BLE001 - every failure goes back to Java as an exception
        err = {"type": type(e).__qualname__, "message": str(e) or traceback.format_exc(limit=1),
               "language": "python"}
    return json.dumps({"error": err})
