"""The local workspace: the SQLite store, its schema, the run ledger and the audit log.
"""
