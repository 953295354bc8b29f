"""Language-neutral conformance suite for docs/service-contract.md.

It only drives HTTP against a running service and controls its database, so
every stack (Python now, TypeScript and Go later) must pass the same tests.
The one stack-specific piece is how to start the service: see stacks.py.
"""
