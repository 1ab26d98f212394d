"""The per-API logic the ingress and the agents deployment run, over typed provider clients."""
