"""coflows: a polyglot workflow runtime.

Python, C#, Java and JavaScript functions of a CoFlows-style workspace run in
one process and are served as URLs, agents and DAG flows.
"""

__version__ = "0.1.0"
