"""Deployment: the local runner (`python -m deploy.local`), images, compose and Kubernetes files."""
