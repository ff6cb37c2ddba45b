"""Text: the normalization rules, escaping for display, Unicode character and script data.
"""
