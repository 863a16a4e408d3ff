"""gke-bot: the Slack edge (app, command grammar, rendering, actions, worker entry)."""
