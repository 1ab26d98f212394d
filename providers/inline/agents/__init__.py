"""inline::builtin agents: the Responses agent loop in a deployment of its own
(deployments/agents.py), which reaches models, tools, vector stores and shields through the graph."""
