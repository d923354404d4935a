"""Dash/Flask apps behind coflows: `/dash/{wid}/{qid}/…` (CoFlows' DashController, made safe).

A query that defines `run(port, path)` is an app (`detect.py`). On the first request the server
picks a free loopback port and calls `run` on a worker thread under a time limit; `run` starts a
web server on 127.0.0.1:port serving under `path` (`/dash/{wid}/{qid}/`) and returns (`manager.py`).
Requests are reverse-proxied to it with the caller's coflows credentials removed (`proxy.py`). An
edited query's app is shut down and started again on its next request.
"""
