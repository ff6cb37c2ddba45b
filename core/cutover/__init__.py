"""Cut-over: the control table, its flag, the gates before a flip, approvals, stream positions.

``control_table`` (the table and its item codecs), ``flag`` (init, read, the compare-and-set flip,
history, status with routers and shadow counts), ``gates`` (what must hold before a flip),
``approvals`` (the two-person rule), ``positions`` (both tables' stream positions at the flip).
docs/cutover.md is the runbook and the schema.
"""
