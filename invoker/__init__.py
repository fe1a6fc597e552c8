"""The dispatcher and rq jobs: run invocations in the sandbox, apply Lambda's async rules."""
