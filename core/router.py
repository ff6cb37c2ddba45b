"""The router library for services, ``from keyshift.core.router import MigrationRouter`` (docs/services.md).

A re-export: the router is kernel code (:mod:`keyshift.core.kernel.router`, standard library and
boto3 only), so ``pip install --no-deps keyshift`` is all a service needs. This module imports
nothing else, so loading it does not pull in the rest of keyshift.
"""

from keyshift.core.kernel.router import (FlagState, MigrationRouter, RouterError, RouterUnavailable,
                                         UnmappedIdentifier, same_item)

__all__ = ["FlagState", "MigrationRouter", "RouterError", "RouterUnavailable", "UnmappedIdentifier", "same_item"]
