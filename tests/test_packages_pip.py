"""Pips: pip-tools lock constrained by coflows' own pins, install into <workspace>/pip.

Most tests use hand-made wheels in a local find-links directory (no network);
the ones marked `network` use real PyPI with one small package.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import time
from pathlib import Path

import pytest

import coflows.packages.pip as pipmod
from coflows.packages.pip import IndexOptions, install_pips, parse_lock, pip_path, runtime_pins
from coflows.packages.progress import RecordingProgress
from coflows.packages.summary import PackageError

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "packages"))
from builders import make_wheel  # noqa: E402

RUNTIME_IDNA = importlib.metadata.version("idna")
RUNTIME_STARLETTE = importlib.metadata.version("starlette")


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> IndexOptions:
    folder = tmp_path_factory.mktemp("wheels")
    make_wheel(folder, "cfpkg-alpha", "1.0", ("cfpkg-beta>=1.0", "idna"),
               "import cfpkg_beta\nVALUE = 'alpha+' + cfpkg_beta.VERSION\n")
    make_wheel(folder, "cfpkg-beta", "1.0")
    make_wheel(folder, "cfpkg-beta", "1.1")
    make_wheel(folder, "cfpkg-old", "1.0", ("starlette<0.30",))
    # Stand-ins so the resolver sees candidates; the runtime's own ones are never installed.
    make_wheel(folder, "idna", RUNTIME_IDNA)
    make_wheel(folder, "starlette", "0.29.0")
    make_wheel(folder, "starlette", RUNTIME_STARLETTE)
    return IndexOptions(find_links=(str(folder),), no_index=True)


def run_in_workspace(workspace: Path, code: str) -> str:
    prelude = f"import sys; sys.path.insert(0, {str(pip_path(workspace))!r})\n"
    out = subprocess.run([sys.executable, "-c", prelude + code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_runtime_pins_cover_coflows_dependencies() -> None:
    pins = runtime_pins()
    assert pins["starlette"] == f"starlette=={RUNTIME_STARLETTE}"
    assert "pydantic-core" in pins  # transitive: pydantic → pydantic-core
    assert "coflows" not in pins and "pytest" not in pins  # the root itself and the test extra are not pinned


def test_lock_install_and_provided_packages(wheels: IndexOptions, tmp_path: Path) -> None:
    progress = RecordingProgress()
    result = install_pips([{"ID": "cfpkg-alpha==1.0"}], tmp_path, progress=progress, index=wheels)
    assert result.compiled and result.installed
    lock = (tmp_path / "requirements.lock").read_text()
    assert "# coflows-key: sha256:" in lock and "--hash=sha256:" in lock
    assert {(b.name, b.version) for b in parse_lock(lock)} == {
        ("cfpkg-alpha", "1.0"), ("cfpkg-beta", "1.1"), ("idna", RUNTIME_IDNA)}
    assert result.provided == ["idna"]  # same version as coflows' own: not installed again
    assert not list(result.path.glob("idna*"))
    assert run_in_workspace(tmp_path, "import cfpkg_alpha; print(cfpkg_alpha.VALUE)") == "alpha+1.1"
    items = {i.name: i for i in result.summary.items}
    assert items["cfpkg-alpha"].status == "installed" and items["cfpkg-beta"].detail == "via cfpkg-alpha"
    assert items["idna"].status == "cached" and "provided" in items["idna"].detail
    assert progress.statuses() == {"Pips: resolve": "installed", "Pips: install 2 packages": "installed"}


def test_second_build_runs_no_subprocess(wheels: IndexOptions, tmp_path: Path, monkeypatch) -> None:
    entries = [{"ID": "cfpkg-alpha==1.0"}]
    install_pips(entries, tmp_path, index=wheels)

    def no_subprocess(*args, **kwargs):
        raise AssertionError(f"pip ran again: {args}")

    monkeypatch.setattr(pipmod, "_run", no_subprocess)
    started = time.perf_counter()
    again = install_pips(entries, tmp_path, index=wheels)
    assert time.perf_counter() - started < 1.0
    assert not again.compiled and not again.installed
    assert {i.status for i in again.summary.items} == {"cached"}


def test_changed_entries_recompile_and_reinstall(wheels: IndexOptions, tmp_path: Path) -> None:
    install_pips([{"ID": "cfpkg-alpha==1.0"}], tmp_path, index=wheels)
    result = install_pips([{"ID": "cfpkg-alpha==1.0"}, {"ID": "cfpkg-beta==1.0"}], tmp_path, index=wheels)
    assert result.compiled and result.installed
    assert run_in_workspace(tmp_path, "import cfpkg_alpha; print(cfpkg_alpha.VALUE)") == "alpha+1.0"
    assert len(list(result.path.glob("cfpkg_beta-*.dist-info"))) == 1  # old pip/ replaced, not merged
    # no entries: what coflows installed is removed
    empty = install_pips([], tmp_path, index=wheels)
    assert not empty.path.exists() and not (tmp_path / "requirements.lock").exists()


def test_conflict_with_runtime_names_both(wheels: IndexOptions, tmp_path: Path) -> None:
    with pytest.raises(PackageError) as info:
        install_pips([{"ID": "cfpkg-beta"}, {"ID": "cfpkg-old==1.0"}], tmp_path, index=wheels)
    message = str(info.value)
    assert message.startswith(f"Pips: 'cfpkg-old==1.0' conflicts with coflows' own 'starlette=={RUNTIME_STARLETTE}'")
    assert "cfpkg-old 1.0 depends on starlette<0.30" in message
    assert "cfpkg-beta" not in message
    assert not (tmp_path / "requirements.lock").exists()

    with pytest.raises(PackageError, match=(f"^Pips: 'starlette==0.29.0' conflicts with coflows' own "
                                            f"'starlette=={RUNTIME_STARLETTE}'$")):
        install_pips([{"ID": "starlette==0.29.0"}], tmp_path, index=wheels)


def test_unknown_package_names_entry(wheels: IndexOptions, tmp_path: Path) -> None:
    with pytest.raises(PackageError, match=r"^Pips: 'cfpkg-nosuch==1\.0': no matching version"):
        install_pips([{"ID": "cfpkg-beta"}, {"ID": "cfpkg-nosuch==1.0"}], tmp_path, index=wheels)


@pytest.mark.parametrize("spec", ["--index-url=http://evil", "-e .", "six ==", "six\n--pre"])
def test_rejects_options_and_bad_requirements(spec: str, tmp_path: Path) -> None:
    with pytest.raises(PackageError, match="^Pips: "):
        install_pips([{"ID": spec}], tmp_path)


@pytest.mark.network
def test_pypi_cold_then_warm(tmp_path: Path, monkeypatch) -> None:
    """A package coflows itself does not have (tabulate): installed once, then a no-op."""
    started = time.perf_counter()
    cold = install_pips([{"ID": "tabulate==0.9.0"}], tmp_path)
    cold_s = time.perf_counter() - started
    assert cold.compiled and cold.installed
    assert run_in_workspace(tmp_path, "import tabulate; print(tabulate.__version__)") == "0.9.0"

    monkeypatch.setattr(pipmod, "_run", lambda *a, **k: pytest.fail("pip ran on a warm build"))
    started = time.perf_counter()
    warm = install_pips([{"ID": "tabulate==0.9.0"}], tmp_path)
    warm_s = time.perf_counter() - started
    assert not warm.compiled and not warm.installed
    print(f"\npip tabulate==0.9.0: cold {cold_s:.2f}s, warm {warm_s * 1000:.0f}ms")


@pytest.mark.network
def test_pypi_conflict_with_coflows_pydantic(tmp_path: Path) -> None:
    own = importlib.metadata.version("pydantic")
    with pytest.raises(PackageError, match=f"^Pips: 'pydantic==1.10.0' conflicts with coflows' own 'pydantic=={own}'"):
        install_pips([{"ID": "pydantic==1.10.0"}], tmp_path)


def test_install_checks_lock_hashes(tmp_path: Path) -> None:
    folder = tmp_path / "wheels"
    folder.mkdir()
    wheel = make_wheel(folder, "cfpkg-beta", "1.0")
    index = IndexOptions(find_links=(str(folder),), no_index=True)
    workspace = tmp_path / "ws"
    install_pips([{"ID": "cfpkg-beta==1.0"}], workspace, index=index)
    make_wheel(folder, "cfpkg-beta", "1.0", code="EVIL = True\n")  # same name, other bytes
    assert wheel.exists()
    (workspace / "pip" / ".coflows-lock-hash").unlink()
    with pytest.raises(PackageError, match=r"^Pips: 'cfpkg-beta==1.0': pip install of requirements.lock failed: "
                                           r".*DO NOT MATCH THE HASHES"):
        install_pips([{"ID": "cfpkg-beta==1.0"}], workspace, index=index)
    assert (workspace / "pip" / "cfpkg_beta.py").read_text() == "VERSION = '1.0'\n"  # the old pip/ is kept
