"""A real LangGraph graph for the saver tests: MessagesState, the default reducer, no network.

Also runnable as a script (``python langgraph_graph.py URL THREAD TEXT``): opens
the store, resumes the thread with one more turn and prints the thread's messages
as JSON, so a test can resume a thread in a fresh process.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.graph.state import CompiledStateGraph


def answer(state: MessagesState) -> dict[str, list[BaseMessage]]:
    """Answers the last message from the state alone (deterministic ids and text)."""
    last = state["messages"][-1]
    reply = f"echo {last.content} after {len(state['messages'])} messages"
    return {"messages": [AIMessage(content=reply, id=f"ai-{last.id}")]}


def build(checkpointer: BaseCheckpointSaver[Any]) -> CompiledStateGraph[Any, Any, Any, Any]:
    builder = StateGraph(MessagesState)
    builder.add_node("answer", answer)
    builder.add_edge(START, "answer")
    builder.add_edge("answer", END)
    return builder.compile(checkpointer=checkpointer)


def user(turn: int | str) -> dict[str, list[BaseMessage]]:
    return {"messages": [HumanMessage(content=f"question {turn}", id=f"h-{turn}")]}


def as_json(messages: list[BaseMessage]) -> list[list[Any]]:
    return [[m.type, m.content, m.id] for m in messages]


def main(url: str, thread_id: str, turn: str) -> None:
    import eventlog
    from eventlog.integrations.langgraph import EventlogSaver

    with eventlog.connect(url) as store:
        graph = build(EventlogSaver(store))
        config = {"configurable": {"thread_id": thread_id}}
        result = graph.invoke(user(turn), config)
        print(json.dumps(as_json(result["messages"])))


if __name__ == "__main__":
    main(*sys.argv[1:4])
