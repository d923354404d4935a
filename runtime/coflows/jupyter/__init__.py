"""JupyterLab inside the server (`"Jupyter": true`): a supervised `jupyter lab` child on a loopback
port, reached only through the server's `/lab` proxy (admins only), with a `coflows` kernel that
loads the server's workspace. See docs/jupyter.md."""
