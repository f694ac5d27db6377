"""Adapters that put eventlog under agent frameworks (each an optional extra).

- `eventlog.integrations.openai_agents`: an OpenAI Agents SDK ``Session``
  (``pip install eventlog[openai-agents]``).
- `eventlog.integrations.langgraph`: LangGraph checkpointers ``EventlogSaver`` and
  ``AsyncEventlogSaver`` (``pip install eventlog[langgraph]``).

Importing this package imports no framework; import the adapter module itself.
"""

from __future__ import annotations

__all__: list[str] = []
