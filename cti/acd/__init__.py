"""Skills-based ACD: queues, agents, priorities, routing."""
