"""Step 1, plan: read a dump, normalize every identifier, classify every record.
"""
