"""API models built from store rows: one module per resource.

The routes and the webhook renderer show a resource the same way, so both import
these; keeping them out of ``routes`` means reading a presenter never registers
(or depends on) a route module.
"""
