"""Agents: long-lived workflow components that react to M changes, messages and cron schedules.

Import the submodules directly (e.g. `coflows.agents.schedule`); this package
imports nothing itself so that importing one part never drags in the others.
"""
