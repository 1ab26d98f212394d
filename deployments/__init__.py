"""Ray Serve deployment classes: the ingress and the generic provider deployment."""
