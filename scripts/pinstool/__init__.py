"""`scripts/pins`: compare extensions/pins.yml with upstream and refresh it.

Upstream is read through git (`ls-remote`), the OCI distribution API and the
PyPI JSON API, each with an overridable base URL so tests can use local
stand-ins.
"""
