"""Step 5, verify: the item-level diff of the new table against transform(old table).
"""
