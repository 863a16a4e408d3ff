"""The diagnosis engine: checks that read facts through one gateway and return findings.

Nothing in this package talks to Slack.
"""
