"""Objects across languages: a foreign object is a live proxy in the caller's language.

Every bridge (C#'s `JVM.Runtime` and `Python.Runtime` dynamic, Java's `app.quant.clr.CLRObject`,
JavaScript's `importNamespace`) keeps the foreign object here, in Python, behind an integer
*handle*, and asks this package to act on it: get or set a member, call a method (with the
argument conversions CoFlows made, see `members.call_member`), call the object itself (a class
makes an instance), iterate, index, take the length. Python is the hub because every engine
already lives in this process as Python objects: a .NET object is a pythonnet object, a Java
object a JPype object.

Names (`"Cs.Base.csBase"`, `"javabase.javaBase"`, `"QuantApp.Kernel.User"`,
`"Base.pyBase.pybase"`) resolve in the calling workflow through resolvers that each engine
registers (`resolvers.register`), so nothing here imports an engine or the Runtime.
"""

from coflows.objects.handles import HANDLES, Handles, StaleHandle
from coflows.objects.members import (
    ForeignError,
    call_member,
    call_object,
    get_member,
    item,
    iterate,
    length,
    set_member,
)
from coflows.objects.resolvers import Namespace, current_workflow, loading, register, resolve, unregister

__all__ = [
    "HANDLES", "ForeignError", "Handles", "Namespace", "StaleHandle", "call_member", "call_object",
    "current_workflow", "get_member", "item", "iterate", "length", "loading", "register", "resolve",
    "set_member", "unregister",
]
