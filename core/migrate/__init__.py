"""Steps 3-5: tables, batch writes, restore, ImportTable, stream sync and verify.
"""
