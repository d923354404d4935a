"""Mono in this process: loading it safely, and the C# compiler running inside it.

- Mono is loaded through pythonnet (`pythonnet.load("mono", debug=True)`: with
  debugging on, .NET stack traces carry `file:line` of user code).
- `MONO_THREADS_SUSPEND` must be `preemptive` before Mono loads: with the
  default (hybrid) mode, C# and Java called from several Python threads at once
  deadlock the process (ENGINES.md). `coflows/__init__.py` sets it; here it is
  checked again, forced if Mono is not loaded yet, and reported when Mono was
  already loaded by someone else in another mode.
- The compiler is Mono's own `mcs.exe`, loaded as an assembly into this process
  and driven through its public `CompilerCallableEntryPoint.InvokeCompiler`: no
  subprocess (Mono's `CSharpCodeProvider` spawns `mcs`, and the `Mono.CSharp.dll`
  library cannot write assemblies to disk in Mono 6.8). mcs keeps global state,
  so compilations are serialised by a lock; a warm compile takes 30–100 ms.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("coflows.engines.clr")

SUSPEND_VAR = "MONO_THREADS_SUSPEND"
SUSPEND_MODE = "preemptive"

_lock = threading.RLock()
_mono: MonoRuntime | None = None


def _libmono_mapped() -> bool:
    """Is a Mono runtime already mapped into this process (loaded by anyone)?"""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
            return any("libmono" in line for line in f)
    except OSError:
        return False


def _skip_slow_shutdown(pythonnet: Any) -> None:
    """Let the process exit without shutting Mono down first.

    pythonnet and clr_loader register exit handlers that shut the runtime down
    (`Loader.Shutdown`, then `mono_jit_cleanup`); on Mono 6.8 that takes 4–8 s at
    every normal interpreter exit (a CLI command, a script), and buys nothing: the
    process ends anyway. Set COFLOWS_CLR_CLEAN_SHUTDOWN=1 to keep them.
    """
    import atexit

    if os.environ.get("COFLOWS_CLR_CLEAN_SHUTDOWN") == "1":
        return
    atexit.unregister(pythonnet.unload)
    try:
        import clr_loader.mono

        atexit.unregister(clr_loader.mono._release)
    except (ImportError, AttributeError):
        pass


@dataclass
class Diagnostic:
    """One line of compiler output."""

    file: str | None
    line: int | None
    column: int | None
    severity: str  # "error" | "warning"
    code: str  # "CS1002"
    text: str

    @property
    def message(self) -> str:
        return f"{self.severity} {self.code}: {self.text}" if self.code else f"{self.severity}: {self.text}"


# `/path/File.cs(12,5): error CS1002: ; expected` and `error CS0006: Metadata file ... could not be found`
_DIAG = re.compile(
    r"^(?:(?P<file>.+?)\((?P<line>\d+),(?P<col>\d+)\)\s*:\s*)?"
    r"(?P<sev>error|warning|fatal error)\s+(?P<code>CS\d+)\s*:\s*(?P<text>.*)$"
)


def parse_diagnostics(output: str) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for raw in output.splitlines():
        line = raw.strip()
        if not line:
            continue
        m = _DIAG.match(line)
        if m is None:
            if line.startswith("Compilation ") or "(Location of the symbol related to previous" in line:
                continue
            out.append(Diagnostic(None, None, None, "error", "", line))
            continue
        sev = "error" if m.group("sev") != "warning" else "warning"
        out.append(Diagnostic(
            m.group("file"), int(m.group("line")) if m.group("line") else None,
            int(m.group("col")) if m.group("col") else None, sev, m.group("code"), m.group("text"),
        ))
    return out


@dataclass
class CompileResult:
    ok: bool
    output: Path
    diagnostics: list[Diagnostic] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "warning"]


class MonoRuntime:
    """The process's Mono: version, load problems, the in-process compiler and the host assembly."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        mode = os.environ.get(SUSPEND_VAR)
        already = _libmono_mapped()
        if already and mode != SUSPEND_MODE:
            msg = (f"Mono was already loaded in this process with {SUSPEND_VAR}={mode or '(unset: hybrid)'}; "
                   f"calling C# and Java from several threads may deadlock. Start the process with "
                   f"{SUSPEND_VAR}={SUSPEND_MODE} (importing coflows first does this)")
            log.error(msg)
            self.problems.append(msg)
        elif mode != SUSPEND_MODE:
            log.error("%s=%s is not supported (C# and Java calls from several threads deadlock); using %s",
                      SUSPEND_VAR, mode, SUSPEND_MODE)
            os.environ[SUSPEND_VAR] = SUSPEND_MODE
        self.suspend_mode = os.environ.get(SUSPEND_VAR, "")

        import pythonnet

        if not getattr(pythonnet, "_LOADED", False):
            if pythonnet.get_runtime_info() is None:
                import warnings

                with warnings.catch_warnings():
                    # clr_loader warns that Mono < 6.12 "is known to be problematic": ENGINES.md
                    # documents the one problem we met (thread suspend mode) and its fix.
                    warnings.simplefilter("ignore", UserWarning)
                    pythonnet.load("mono", debug=True)
            else:
                pythonnet.load()
        info = pythonnet.get_runtime_info()
        self.kind = info.kind if info is not None else "unknown"
        _skip_slow_shutdown(pythonnet)
        import clr  # noqa: F401 - the import hook for .NET namespaces

        import System
        from System.Reflection import Assembly, BindingFlags

        self.System = System
        mono_type = System.Type.GetType("Mono.Runtime")
        if mono_type is None:
            raise RuntimeError(f"the CLR in this process is {self.kind}, not Mono")
        display = mono_type.GetMethod("GetDisplayName", BindingFlags.NonPublic | BindingFlags.Static)
        self.version = str(display.Invoke(None, None)) if display is not None else "unknown"
        corlib = Path(str(System.Object().GetType().Assembly.Location))
        self.lib_dir = corlib.parent  # /usr/lib/mono/4.5
        mcs = self.lib_dir / "mcs.exe"
        if not mcs.exists():
            raise RuntimeError(f"Mono's C# compiler is missing ({mcs}); install the mono-devel package")
        asm = Assembly.LoadFrom(str(mcs))
        entry = asm.GetType("Mono.CSharp.CompilerCallableEntryPoint")
        self._invoke_compiler = entry.GetMethod("InvokeCompiler")
        self._compile_lock = threading.Lock()
        self.compiles = 0
        self.default_references = self._default_references()

    def _default_references(self) -> list[str]:
        refs = ["System.dll", "System.Core.dll", "System.Xml.dll", "System.Xml.Linq.dll", "System.Data.dll",
                "System.Numerics.dll", "Microsoft.CSharp.dll"]
        out = [str(self.lib_dir / r) for r in refs if (self.lib_dir / r).exists()]
        # netstandard 2.0 libraries (NuGet packages, most Bins) need these facades
        for facade in ("netstandard.dll", "System.Runtime.dll"):
            p = self.lib_dir / "Facades" / facade
            if p.exists():
                out.append(str(p))
        return out

    # -- compiling ------------------------------------------------------------------------------
    def compile(self, sources: list[Path], output: Path, references: list[Path | str] = (),
                debug: bool = True) -> CompileResult:
        """Compile C# `sources` into the library `output` (plus `.mdb` debug symbols)."""
        import time

        from System import Array, Object, String
        from System.IO import StringWriter

        args = ["-target:library", "-nologo", f"-out:{output}"]
        if debug:
            args.append("-debug")
        seen: set[str] = set()
        for r in [*self.default_references, *(str(r) for r in references)]:
            if r not in seen:
                seen.add(r)
                args.append(f"-r:{r}")
        args += [str(s) for s in sources]
        output.parent.mkdir(parents=True, exist_ok=True)
        writer = StringWriter()
        start = time.perf_counter()
        with self._compile_lock:
            ok = bool(self._invoke_compiler.Invoke(None, Array[Object]([Array[String](args), writer])))
            self.compiles += 1
        diags = parse_diagnostics(str(writer.ToString()))
        ok = ok and output.exists() and not any(d.severity == "error" for d in diags)
        return CompileResult(ok, output, diags, time.perf_counter() - start)

    # -- helper assemblies ------------------------------------------------------------------------
    def build_helper(self, name: str, source_name: str | list[str], references: list[Path] = ()) -> Path:
        """Compile `host/<source_name>` (one file or several) once per (sources, references, Mono)
        into a shared cache.

        Returns the path of `<name>.dll`. The cache is `$XDG_CACHE_HOME/coflows/clr` (or a
        per-user temp folder); builds go to a private folder and are renamed into place, so
        processes starting together never see half a file.
        """
        host_dir = Path(__file__).resolve().parent / "host"
        sources = [host_dir / n for n in ([source_name] if isinstance(source_name, str) else source_name)]
        h = hashlib.sha256(b"".join(s.name.encode() + b"\0" + s.read_bytes() for s in sources)
                           + self.version.encode())
        for r in references:
            st = Path(r).stat()
            h.update(f"{r}:{st.st_size}:{st.st_mtime_ns}".encode())
        digest = h.hexdigest()[:16]
        for base in (Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "coflows" / "clr",
                     Path(tempfile.gettempdir()) / f"coflows-clr-{os.getuid()}"):
            target = base / digest / f"{name}.dll"
            if target.exists():
                return target
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp_dir = Path(tempfile.mkdtemp(prefix="build-", dir=target.parent))
            except OSError:
                continue
            tmp = tmp_dir / f"{name}.dll"
            result = self.compile(sources, tmp, list(references))
            if not result.ok:
                raise RuntimeError(f"cannot compile {', '.join(map(str, sources))}:\n" + "\n".join(d.message for d in result.diagnostics))
            mdb = tmp.with_name(tmp.name + ".mdb")
            if mdb.exists():
                os.replace(mdb, target.with_name(target.name + ".mdb"))
            os.replace(tmp, target)
            for p in tmp_dir.iterdir():
                p.unlink(missing_ok=True)
            tmp_dir.rmdir()
            return target
        raise RuntimeError(f"no writable cache directory for {name}.dll")

    def newtonsoft_dll(self) -> Path | None:
        """Debian's Json.NET (package libnewtonsoft-json5.0-cil), or None.

        The package puts it in /usr/lib/cli/Newtonsoft.Json-5.0/ and its install trigger into
        Mono's GAC (where Mono finds it when code that references it runs); the GAC copy is
        preferred, the other is the fallback (the engine then loads it before any user code).
        """
        gac = self.lib_dir.parent / "gac" / "Newtonsoft.Json"
        found = sorted(gac.glob("*/Newtonsoft.Json.dll"), key=lambda p: [int(x) if x.isdigit() else 0 for x in
                                                                        p.parent.name.split("_")[0].split(".")])
        if found:
            return found[-1]
        cli = sorted(Path("/usr/lib/cli").glob("Newtonsoft.Json-*/Newtonsoft.Json.dll"))
        return cli[-1] if cli else None

    def python_runtime_dll(self) -> Path:
        import pythonnet

        return Path(pythonnet.__file__).resolve().parent / "runtime" / "Python.Runtime.dll"


def mono() -> MonoRuntime:
    """Load Mono into the process (once) and return it."""
    global _mono
    if _mono is None:
        with _lock:
            if _mono is None:
                _mono = MonoRuntime()
    return _mono


def loaded() -> MonoRuntime | None:
    return _mono


def describe_runtime() -> dict[str, Any]:
    m = _mono
    if m is None:
        return {"loaded": False}
    return {"loaded": True, "runtime": "mono", "version": m.version, "threads_suspend": m.suspend_mode,
            "compiles": m.compiles, "problems": list(m.problems)}
