"""Bolt listeners, one module per kind: commands, events, actions (and views/shortcuts). Each acks first and
hands the work to the edge services (bot.edge)."""
