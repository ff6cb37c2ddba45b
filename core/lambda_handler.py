"""The Lambda entry point, ``keyshift.core.lambda_handler.handler`` (docs/deploy.md).

A re-export: the handler is kernel code (:mod:`keyshift.core.kernel.lambda_handler`, standard
library and boto3 only), so ``pip install --no-deps keyshift`` is all a function needs. This
module imports nothing else, so loading it does not pull in the rest of keyshift.
"""

from keyshift.core.kernel.lambda_handler import (ENV_DIRECTION, ENV_KEYMAP_URI, Handler, LambdaConfigError,
                                                  current, handler, reset)

__all__ = ["ENV_DIRECTION", "ENV_KEYMAP_URI", "Handler", "LambdaConfigError", "current", "handler", "reset"]
