"""The push function: each change of a task's progress or status, posted to its owner's WebSocket connections."""
