"""What runs as Ray Serve deployments (the ingress, the provider host, the agents deployment) and
what they run: routes/, services/ and the typed provider clients/."""
