"""C# agents and the C# M binding (`Coflows.FPKG`, `Coflows.M`, from `host/Agents.cs`).

* `definition_from_assembly`: after an agent file compiles, its factory (package.json `Exe`,
  default `pkg`: a public static method without parameters of a public class) is called and the
  `FPKG` it returns becomes an `AgentDefinition` whose hooks are Python callables invoking the
  .NET delegates. Arguments go to C# as the engine's JSON-like .NET values (`long`, `double`,
  `string`, `bool`, `DateTime`, `List<object>`, `Dictionary<string, object>`); `Body` gets the
  message as JSON text, as in CoFlows; results come back through `convert.to_py`. A .NET
  exception in a hook is a `UserCodeError`.
* `runtime_call`: the Python side of `Coflows.RuntimeBridge` (M operations, JSON helpers,
  `Coflows.User`, who is calling, and `JVM.JVMObject`'s `obj.*` operations, in `clr.objects`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from coflows.agents.definition import AgentDefinition, AgentError, definition_from
from coflows.errors import CoflowsError
from coflows.serialize import to_jsonable

_TEXT = ("ID", "WorkflowID", "Name", "Description", "MID", "ScheduleCommand")


def _cv() -> Any:
    from coflows.engines.clr import convert

    return convert


def _find_factory(asm: Any, exe: str) -> Any:
    """The public static parameterless method `exe` of the assembly's public classes (first class first)."""
    from System.Reflection import BindingFlags

    flags = BindingFlags.Public | BindingFlags.Static | BindingFlags.DeclaredOnly
    for t in asm.GetExportedTypes():
        if not t.IsClass or t.ContainsGenericParameters:
            continue
        for m in t.GetMethods(flags):
            if str(m.Name) == exe and m.GetParameters().Length == 0 and not m.IsGenericMethodDefinition:
                return m
    return None


def _hook(name: str, delegate: Any, root: Path) -> Any:
    """A Python callable for a hook's .NET delegate, converting as the runner calls it."""
    from coflows.engines.clr import net_user_error

    cv = _cv()
    net_error = cv.NetException

    from Coflows import Calls, HookOutput

    def call(*args: Any) -> Any:
        HookOutput.Begin()  # Console output of this thread goes to the run record (through sys.stdout)
        try:
            return Calls.Hook(delegate, *args)  # a stoppable call (host/Calls.cs)
        except net_error as e:
            raise net_user_error(e, root) from None
        finally:
            text = HookOutput.End()
            if text:
                sys.stdout.write(text)

    if name == "Load":
        from System import Array, Object

        def load(values: Any) -> None:
            call(None if values is None else Array[Object]([cv.to_net_any(v) for v in values]))
        fn = load
    elif name in ("Add", "Exchange", "Remove"):
        def m_callback(entry_id: Any, value: Any) -> None:
            call(str(entry_id), cv.to_net_any(value))
        fn = m_callback
    elif name == "Body":
        def body(data: Any) -> Any:
            result = call(json.dumps(data, default=to_jsonable))  # JSON text, as in CoFlows
            try:
                return cv.to_py(result)
            except cv.NetException as e:  # property getters are user code
                raise net_user_error(e, root) from None
        fn = body
    else:  # Job
        def job(timestamp: Any, execution_type: Any) -> None:
            call(cv.datetime_to_net(timestamp), str(execution_type))
        fn = job
    fn.__qualname__ = fn.__name__ = f"{name} (C# {delegate.Method.DeclaringType.Name}.{delegate.Method.Name})"
    return fn


def definition_from_assembly(asm: Any, exe: str | None, *, workflow_id: str, source: str, file_name: str,
                             root: Path) -> AgentDefinition:
    """Call the agent's factory and turn its FPKG into an AgentDefinition (AgentError if it cannot)."""
    from coflows.engines.clr import net_user_error

    from Coflows import HookOutput

    HookOutput.Install()
    exe = exe or "pkg"
    method = _find_factory(asm, exe)
    if method is None:
        raise AgentError(f"{source}: no public static method '{exe}()' in a public class (the agent's factory, "
                         f"package.json 'Exe')")
    try:
        spec = method.Invoke(None, None)
    except _cv().NetException as e:
        err = net_user_error(e, root)
        raise AgentError(f"{source}: {exe}() failed: {err}\n{err.stack}".rstrip()) from None
    if spec is None:
        raise AgentError(f"{source}: {exe}() returned null; expected a Coflows.FPKG")
    get_type = getattr(spec, "GetType", None)
    type_name = str(get_type().FullName) if get_type is not None else type(spec).__name__
    if type_name not in ("Coflows.FPKG", "QuantApp.Engine.FPKG"):  # CoFlows' FPKG is a Coflows.FPKG (QuantApp.cs)
        raise AgentError(f"{source}: {exe}() returned a {type_name}; expected a Coflows.FPKG")
    data: dict[str, Any] = {}
    for key in _TEXT:
        value = getattr(spec, key)
        data[key] = None if value is None else str(value)
    for hook in ("Load", "Add", "Exchange", "Remove", "Body", "Job"):
        delegate = getattr(spec, hook)
        if delegate is not None:
            data[hook] = _hook(hook, delegate, root)
    stem = Path(file_name).stem
    return definition_from(data, workflow_id=workflow_id, default_id=f"{workflow_id}-{stem}", default_name=stem,
                           source=source, language="csharp")


# -- M and JSON for C# ---------------------------------------------------------------------------
def _mset(topic: str) -> Any:
    from coflows.m.api import MSet

    return MSet(topic)


_M_OPS = {
    "add": lambda s, a: s.add(a[0]),
    "exchange": lambda s, a: s.exchange(a[0], a[1]),
    "exchange_id": lambda s, a: s.exchange_id(a[0], a[1]),
    "remove": lambda s, a: s.remove(a[0]),
    "remove_id": lambda s, a: s.remove_id(a[0]),
    "get": lambda s, a: s.get(a[0]),
    "find": lambda s, a: s.find(a[0]),
    "count": lambda s, a: s.count(),
    "list": lambda s, a: s.list(),
    "entries": lambda s, a: s.entries(),
    "query": lambda s, a: s.query(where=a[0]),
    "key_values": lambda s, a: s.key_values(),
    "clear": lambda s, a: s.clear(),
}


def runtime_call(op: str, topic: str | None, args: Any) -> Any:
    """`Coflows.RuntimeBridge.Invoke` from C#: a .NET result, or a HostError (thrown in C# as CallException)."""
    cv = _cv()
    try:
        if op.startswith("obj."):  # JVM.JVMObject (host/Jvm.cs): foreign objects as C# dynamic
            from coflows.engines.clr.objects import invoke

            return invoke(op, topic, args)
        py_args = [cv.to_py(a) for a in args] if args is not None else []
        if op == "json.parse":
            return cv.to_net_any(json.loads(py_args[0]))
        if op == "json.dump":
            return json.dumps(py_args[0], default=to_jsonable)
        if op == "caller.user":  # Coflows.User.Current: this thread's call (C# runs on the caller's thread)
            from coflows.caller import user_json

            return cv.to_net_any(user_json())
        if op == "caller.permission":
            from coflows.caller import permission

            return cv.to_net_any(permission(py_args[0]))
        if op.startswith("quantapp."):  # QuantApp.Kernel.User (QuantApp.cs): the Python API's answers
            from coflows.compat.kernel import User

            if op == "quantapp.user":  # () or (secret)
                data = User.ContextUserBySecret(py_args[0]) if py_args else User.GetContextUser()
                return cv.to_net_any({k: getattr(data, k) for k in ("ID", "Email", "FirstName", "LastName")})
            if op == "quantapp.permission":  # (secret, group)
                return cv.to_net_any(int(User.PermissionContext(py_args[0], py_args[1])))
        fn = _M_OPS.get(op)
        if fn is None:
            raise CoflowsError(f"unknown M operation '{op}'")
        return cv.to_net_any(fn(_mset(str(topic)), py_args))
    except Exception as e:  # noqa: BLE001 - report, never let a Python error cross as a crash
        return cv.host_error(e)
