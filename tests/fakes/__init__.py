"""Local fakes that speak the real wire formats of Slack, Google Cloud and Kubernetes.

Every fake listens on a loopback address only.
"""
