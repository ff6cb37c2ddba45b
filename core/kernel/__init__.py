"""The service-side kernel: what runs inside other people's services and Lambdas.

Standard library and boto3 only (``pip install --no-deps keyshift`` is enough), and nothing
else of keyshift: the keymap document reader, the transform and its inverse, item facts.
"""
