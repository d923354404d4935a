"""CoFlows' `QuantApp` namespace for Python code written for CoFlows:
`import QuantApp.Kernel as qak`, `import QuantApp.Engine as qae`. Thin re-exports of
`coflows.compat`; see docs/compat-python.md."""

import coflows.compat  # noqa: F401 - registers the QuantApp names and the Base finder
