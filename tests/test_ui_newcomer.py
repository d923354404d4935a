"""The whole path of a newcomer through the web app, on the example workspace (mnt/) with its four
languages: log in, open the example workflow, call Add from the form and see 3, add an M entry and
see another client's arrive live, watch an agent run, submit a flow and see it finish."""

from __future__ import annotations

from test_example_workspace import example  # noqa: F401 - the fixture: a copy of mnt/ with its own database
from ui_app import PASSWORD, add_users, browser_or_skip, run_ui

WID = "3c0a3f6e-5d1b-4a8e-9a41-6f2f5b7c9d10"


def test_a_newcomer_does_everything_in_the_browser(example, start_server):  # noqa: F811
    browser_or_skip()
    add_users(example, {"ada@example.com": {"name": "Ada", "grants": {WID: "write"}}})
    s = start_server(example)
    out = run_ui("newcomer.mjs", {"base": s.base, "email": "ada@example.com", "password": PASSWORD,
                                  "key": example.config["Server"]["SecretKey"], "wid": WID}, timeout=240)
    assert out["add"] == "3"
    assert out["otherClient"] == 200 and out["liveRows"] == 2
    assert out["agentHooks"].count("Add") >= 2, out["agentHooks"]
    assert out["flow"]["state"] == "finished" and set(out["flow"]["nodes"]) >= {"Prices", "Report"}
    assert out["titles"][:2] == ["Example · coflows", "PythonQuery.py · coflows"], out["titles"]
    assert out["problems"] == []
