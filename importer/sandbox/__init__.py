"""A local stand-in for myKaarma's Customer API, for demos, tests and benchmarks."""

from importer.sandbox.server import SandboxConfig, SandboxThread, build_app, running_sandbox

__all__ = ["SandboxConfig", "SandboxThread", "build_app", "running_sandbox"]
