"""The single-module name of earlier versions: everything now lives in the ``reelgate`` package."""

from reelgate import *  # noqa: F401,F403
from reelgate import __all__  # noqa: F401
