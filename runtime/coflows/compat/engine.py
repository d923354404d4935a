"""CoFlows' `QuantApp.Engine`: agent packages (`FPKG`), `Utils.SetFunction` and the delegate
wrappers `Load`, `Body`, `Job`. They are coflows' own (`coflows.agents.definition`), re-exported
under CoFlows' names so that CoFlows agents load unchanged."""

from coflows.agents.definition import FPKG, Body, Job, Load, Utils

__all__ = ["FPKG", "Body", "Job", "Load", "Utils"]
