"""Execution environments for Lambda-style functions: nsjail-isolated, warm, Lambda-shaped.

Imports nothing from broker/, invoker/ or pollers/; the invoker talks to it only
through the values in `sandbox.types`.
"""

from sandbox.jail import find_nsjail
from sandbox.pool import Pool
from sandbox.types import FunctionSpec, InvokeRequest, InvokeResult, SandboxUnavailable

__all__ = ["Pool", "FunctionSpec", "InvokeRequest", "InvokeResult", "SandboxUnavailable", "find_nsjail"]
