"""The behavioural contract (DESIGN.md sections 1-3), run unchanged on every backend."""
