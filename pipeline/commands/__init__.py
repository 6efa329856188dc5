"""The operator commands, `python -m pipeline <command>`: what a person runs against a deployed
environment (start, watch, lineage, metrics, approve, reject, validate-data, promote, definition).
`cli` parses and dispatches; each command's work is in a module of its own.
"""
