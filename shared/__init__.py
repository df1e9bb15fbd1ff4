"""The Meet middleware's own package: everything two functions need lives here once."""
import gc as _gc
import os as _os
import sys as _sys


def _loading_a_function() -> bool:
    """True while functions-framework loads a function's source: it does so inside its Flask app context."""
    flask = _sys.modules.get("flask")
    return flask is not None and flask.has_app_context()


# The pre-fork pattern of the gc module's documentation: no collections while a function loads (they took a third
# of its import time, collecting garbage that import does not make), what it loaded frozen before gunicorn forks
# the worker, collections back on after the worker's first request (shared.web.app.FunctionApp). Anything else
# that imports this package (tests, operator commands) is left alone.
_LOADING = _loading_a_function()
GC_PAUSED_FOR_LOADING = _LOADING and _gc.isenabled()
if GC_PAUSED_FOR_LOADING:
    _gc.disable()
if _LOADING:
    # pydantic looks for plugins in every installed distribution's entry points before it builds its first
    # validator (4 ms of a cold start); the product uses none. An operator's own setting is kept.
    _os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
