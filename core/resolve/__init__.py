"""Step 2, resolve: cases, operators' decisions, bulk decisions, decision files, the keymap build.
"""
