"""Step 4, stream sync: the old table's stream replayed through the transform.
"""
