"""`import QuantApp.Engine as qae`: CoFlows' agent package names (FPKG, Utils, Load, Body, Job)."""

from coflows.compat.engine import FPKG, Body, Job, Load, Utils

__all__ = ["FPKG", "Body", "Job", "Load", "Utils"]
