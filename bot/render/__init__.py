"""Rendering of the Slack-neutral finding model: Block Kit (`blocks`) and the terminal (`text`)."""
