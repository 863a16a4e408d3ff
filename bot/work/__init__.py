"""The work layer: the queue (RQ or in-process), what a job does, tracking and the janitor, server-side state."""
